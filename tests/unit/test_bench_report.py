"""The benchmark report: the load for the ratio to the raw replay, the flood's CPU
bound, the answer burst's table."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import (
    answer_burst_section,
    cpu_ceiling,
    flood_ceiling_line,
    unsaturated_common_stage,
)


def _stage(players: int, worst_p95_ms: float, commands: dict[str, float]) -> dict[str, Any]:
    return {
        "players": players,
        "all": {"worst_command_p95_ms": worst_p95_ms},
        "commands": {
            name: {"count": 1, "p50_ms": p95 / 2, "p95_ms": p95} for name, p95 in commands.items()
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
