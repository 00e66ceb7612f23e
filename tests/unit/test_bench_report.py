"""The benchmark report: the load for the ratio to the raw replay, the flood's CPU
bound, the answer burst's table."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bench.config import SCALES, BenchConfig, served
from bench.report import (
    answer_burst_section,
    capacity,
    claims,
    cpu_ceiling,
    flood_ceiling_line,
    unsaturated_common_stage,
)


def _stage(players: int, worst_p95_ms: float, commands: dict[str, float]) -> dict[str, Any]:
    return {
        "players": players,
        "all": {"worst_command_p95_ms": worst_p95_ms},
        "commands": {
            name: {
                "count": 1,
                "p50_ms": p95 / 2,
                "p95_ms": p95,
                "p99_ms": p95,
                "throughput": 1.0,
                "statements_mean": 1.0,
            }
            for name, p95 in commands.items()
        },
    }


def test_the_ratio_to_raw_is_taken_where_the_replay_still_serves() -> None:
    quizbot = {"stages": [_stage(n, 20.0, {"stats": 3.0}) for n in (10, 300, 1000)]}
    raw = {
        "stages": [
            _stage(10, 10.0, {"stats": 2.0}),
            _stage(300, 113.0, {"stats": 2.5}),
            # Saturated: its times are its own queue.
            _stage(1000, 1341.0, {"stats": 11.0}),
        ]
    }
    assert unsaturated_common_stage(quizbot, raw, "stats") == 300


def test_no_load_when_the_replay_never_served_or_never_ran_the_command() -> None:
    quizbot = {"stages": [_stage(10, 20.0, {"stats": 3.0, "answer": 9.0})]}
    saturated = {"stages": [_stage(10, 900.0, {"stats": 2.0})]}
    assert unsaturated_common_stage(quizbot, saturated, "stats") is None
    served = {"stages": [_stage(10, 90.0, {"stats": 2.0})]}
    assert unsaturated_common_stage(quizbot, served, "answer") is None
    assert unsaturated_common_stage(quizbot, served, "stats") == 10


def test_the_capacity_reads_the_stages_past_the_ramp() -> None:
    ramp = [_stage(n, 20.0, {"answer": 9.0}) for n in (10, 100)]
    # Still served at the ramp's top: only a lower bound.
    assert capacity({"stages": ramp}) == (100, True)
    past = [_stage(300, 90.0, {"answer": 40.0}), _stage(1000, 800.0, {"answer": 700.0})]
    assert capacity({"stages": ramp, "capacity_stages": past}) == (300, False)
    assert capacity({"stages": ramp, "capacity_stages": past[:1]}) == (300, True)
    assert capacity({"stages": ramp, "capacity_stages": past[:1], "gave_up_at": 1000}) == (
        300,
        False,
    )


def test_a_stage_with_failed_commands_is_not_served() -> None:
    # Failed commands are left out of the latencies: fast figures, yet not served.
    failing = _stage(300, 90.0, {"answer": 40.0})
    failing["all"]["errors"] = 3
    assert not served(failing)
    assert served(_stage(300, 90.0, {"answer": 40.0}))
    ramp = [_stage(n, 20.0, {"answer": 9.0}) for n in (10, 100)]
    assert capacity({"stages": ramp, "capacity_stages": [failing]}) == (100, False)


def _variant(name: str, stages: list[dict[str, Any]], past: list[dict[str, Any]]) -> dict[str, Any]:
    for s in stages:
        s["process"] = {"loop_lag_max_ms": 2.0, "loop_lag_p99_ms": 1.0}
    # The stages past the ramp stall the loop far past the target.
    for s in past:
        s["process"] = {"loop_lag_max_ms": 900.0, "loop_lag_p99_ms": 300.0}
    return {
        "name": name,
        "stages": stages,
        "capacity_stages": past,
        "scale_totals": {"peak_rss_mb": 150.0},
        "process_totals": {"peak_rss_mb": 260.0},
    }


def test_the_ten_fold_claim_is_decided_by_the_capacity_stages_and_nothing_else_reads_them() -> None:
    ramp = [_stage(n, 20.0, {"stats": 3.0, "answer": 8.0}) for n in (10, 100, 300)]
    legacy_ramp = [
        _stage(10, 90.0, {"stats": 60.0, "answer": 80.0}),
        _stage(100, 700.0, {"stats": 650.0, "answer": 700.0}),
    ]
    # At 1,000 players (past the ramp) quizbot's stats took 9 ms, its answers 60 ms at
    # p99 and its loop stalled: the targets read the ramp's stages, the capacity is
    # 1,000, 100x legacy's 10.
    past = [_stage(1000, 200.0, {"stats": 9.0, "answer": 60.0})]
    results: dict[str, Any] = {
        "config": {"scale": {"name": "standard", "capacity_players": (1000,)}},
        "variants": [_variant("quizbot", ramp, past), _variant("legacy", legacy_ramp, [])],
    }
    rows = {r["claim"]: r for r in claims(results)}
    capacity_row = rows["concurrent players served with p95 < 500 ms"]
    assert capacity_row["measured"] == "legacy: 10, quizbot: ≥ 1000; ratio ≥ 100.0×"
    assert capacity_row["verdict"].startswith("**met**")
    stats = rows["stats: statements and p95"]
    assert "worst-stage p95 3.0 ms" in stats["measured"] and "at 300 players" in stats["measured"]
    assert rows["answer p99 at 1,000 players"]["measured"] == "no 1,000-player stage"
    stall = rows["event-loop stall under load (quizbot)"]
    assert stall["measured"] == "worst stage: p99 1.0 ms, max 2.0 ms"
    assert stall["verdict"].startswith("**met**")
    rss = rows["peak RSS of the bot process"]["measured"]
    assert rss.startswith("150.0 MB") and "up to 300 players" in rss
    # Legacy's comparisons stay at the loads both ramps ran.
    assert "p95 `stats` at 100 players (legacy → quizbot)" in rows
    # Without the stage past the ramp, 30x: met as well, from the ramp alone.
    results["variants"][0]["capacity_stages"] = []
    rows = {r["claim"]: r for r in claims(results)}
    assert rows["concurrent players served with p95 < 500 ms"]["measured"].endswith("30.0×")


def test_players_given_on_the_command_line_drop_the_capacity_stages() -> None:
    config = BenchConfig(scale=SCALES["standard"])
    assert config.scale.capacity_players
    assert config.with_overrides(players=(10, 100)).scale.capacity_players == ()
    kept = config.with_overrides(duration=3.0, think_ms=200.0).scale
    assert kept.capacity_players == SCALES["standard"].capacity_players


def test_capacity_stages_must_rise_past_the_ramp() -> None:
    with pytest.raises(ValueError, match="must rise past the ramp"):
        dataclasses.replace(SCALES["standard"], capacity_players=(500,))


def _flood(answers: int, bot_s: float, server_s: float | None) -> dict[str, Any]:
    return {
        "commands": {"answer": {"count": answers, "throughput": answers / 10}},
        "process": {"cpu_s": bot_s, "server_cpu_s": server_s},
    }


def test_the_cores_bound_the_flood_at_its_cpu_per_answer() -> None:
    # 40,000 answers on 8 s of the bot's CPU and 12 s of the server's: 200 + 300 µs each,
    # so two cores sustain at most 2 s / 500 µs = 4,000 answers per second.
    assert cpu_ceiling(_flood(40_000, 8.0, 12.0), cpus=2) == pytest.approx((200.0, 300.0, 4000.0))
    markdown_line = flood_ceiling_line("quizbot", _flood(40_000, 8.0, 12.0), 2)
    assert markdown_line is not None and "at most 4,000 answers/s" in markdown_line


def test_no_bound_without_the_servers_cpu_or_answers() -> None:
    assert cpu_ceiling(_flood(40_000, 8.0, None), cpus=2) is None
    assert cpu_ceiling(_flood(0, 8.0, 12.0), cpus=2) is None
    # A reading that went backwards is no cost at all.
    assert cpu_ceiling(_flood(40_000, 8.0, -0.5), cpus=2) is None


def _burst(**server: float | None) -> dict[str, Any]:
    return {
        "players": 240,
        "bursts": 11,
        "cpu_us_per_answer": 65.1,
        "wall_ms_per_burst": 50.1,
        "batches_per_burst": 1.0,
        "first_cpu_us_per_answer": 97.9,
        "first_wall_ms": 91.9,
        **server,
    }


def _burst_row(lines: list[str]) -> dict[str, str]:
    table = [line for line in "\n".join(lines).splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    return dict(zip(header, (c.strip() for c in table[2].strip("|").split("|")), strict=True))


def test_the_burst_shows_the_servers_cpu_per_answer() -> None:
    row = _burst_row(answer_burst_section(_burst(server_cpu_us_per_answer=180.44)))
    assert row["CPU µs per answer"] == "65.1"
    assert row["server CPU µs per answer"] == "180.4"


def test_a_burst_without_the_servers_cpu_shows_a_dash() -> None:
    # A server on another machine (None), or a run's JSON from before it was measured.
    for burst in (_burst(server_cpu_us_per_answer=None), _burst()):
        row = _burst_row(answer_burst_section(burst))
        assert row["server CPU µs per answer"] == "–"
    assert answer_burst_section(None) == []
