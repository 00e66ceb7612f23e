"""`quizbot bench --scale smoke` end to end: it runs, checks integrity and writes its reports.

No timing is asserted (timings belong in the benchmark's own report); only that
the run completes, nothing acknowledged was lost or counted twice, the files
exist, and the statement counts are what the code paths imply.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("psycopg2")
pytest.importorskip("psutil")
pytest.importorskip("matplotlib")

from bench import runner
from bench.config import SCALES, BenchConfig, served
from tests.database import IN_CI, server_url

REDIS_URL = os.environ.get("QUIZBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    config = BenchConfig(
        scale=SCALES["smoke"],
        out_dir=out,
        server_url=server_url(),
        progress=False,
        pgbench_seconds=1,
        redis_url=REDIS_URL,
    )
    status = runner.run(config, command="pytest smoke")
    results = json.loads((out / "bench-smoke.json").read_text())
    return status, results, out


def test_smoke_run_passes_integrity(smoke: tuple[int, dict[str, Any], Path]) -> None:
    status, results, _ = smoke
    assert status == 0
    names = [v["name"] for v in results["variants"]]
    # The traced run records the statements raw replays; the measured one records nothing.
    assert names[:4] == ["quizbot-traced", "quizbot", "raw", "legacy"]
    for v in results["variants"]:
        integrity = v["integrity"]
        assert integrity["passed"], (v["name"], integrity["failures"])
        assert integrity["duplicate_answers"] == 0
        assert integrity["member_points_differ"] == 0
    by_name = {v["name"]: v for v in results["variants"]}
    for name in ("quizbot-traced", "quizbot", "raw", "legacy"):
        integrity = by_name[name]["integrity"]
        assert integrity["checked_acks"], name
        assert integrity["acknowledged"] > 0, name
        assert integrity["missing"] == 0, name
        assert integrity["acknowledged_twice"] == 0, name
    # The replay wrote and acknowledged every answer quizbot acknowledged, once: each
    # group-committed batch replayed exactly once, its session ids remapped.
    quizbot, raw = by_name["quizbot-traced"]["integrity"], by_name["raw"]["integrity"]
    assert raw["acknowledged"] == quizbot["acknowledged"]
    assert raw["answers_in_database"] == quizbot["answers_in_database"]
    assert by_name["raw"]["unmapped_session_ids"] == 0
    assert by_name["raw"]["batches_forced"] == 0
    # quizbot keeps its per-day roll-up equal to the answers, seeded days included; the
    # legacy design has no roll-up, so its new answers are missing there (reported only).
    for name in ("quizbot-traced", "quizbot", "raw"):
        assert by_name[name]["integrity"]["daily_points_differ"] == 0, name
    assert by_name["legacy"]["integrity"]["daily_points_differ"] > 0


def test_smoke_capacity_stages_follow_the_ramp_while_served(
    smoke: tuple[int, dict[str, Any], Path],
) -> None:
    _, results, out = smoke
    loads = SCALES["smoke"].capacity_players
    assert loads
    markdown = (out / "bench-smoke.md").read_text()
    for v in results["variants"]:
        past = v.get("capacity_stages") or []
        if v["name"] not in ("quizbot", "legacy"):
            assert not past, v["name"]
            continue
        # A stage past the ramp runs only while the stage before it served its load.
        ran = [*v["stages"], *past]
        for before, stage in zip(ran[len(v["stages"]) - 1 :], past, strict=False):
            assert served(before), v["name"]
            assert stage["all"]["count"] > 0 and stage["process"]["probe_ms"] > 0
        assert [s["players"] for s in past] == list(loads[: len(past)])
        if len(past) < len(loads):  # stopped: the last stage run did not serve its load
            assert not served(ran[-1]), v["name"]
        for stage in past:
            assert f"| {v['name']} | {stage['players']} (capacity) |" in markdown
        # The peak RSS the target reads is the process's before these stages.
        assert v["scale_totals"]["peak_rss_mb"] <= v["process_totals"]["peak_rss_mb"]


def test_smoke_run_writes_reports(smoke: tuple[int, dict[str, Any], Path]) -> None:
    _, results, out = smoke
    for name in (
        "bench-smoke.json",
        "bench-smoke.md",
        "bench-smoke.png",
        "bench-smoke-explain.txt",
    ):
        assert (out / name).stat().st_size > 0, name
    markdown = (out / "bench-smoke.md").read_text()
    assert "## Claims of the plan and targets of issue 5" in markdown
    assert (
        "EXPLAIN" in markdown or "Execution Time" in (out / "bench-smoke-explain.txt").read_text()
    )
    assert results["claims"], "the claims table is computed"
    comparison = {r["query"]: r for r in results["hot_queries"]["comparison"]}
    # The period board: the week's kept sums, against the statement the roll-ups replaced
    # (the sum of the answers).
    period = comparison["period leaderboard (week)"]
    assert "member_period_points" in period["indexed_statement"]
    assert period["unindexed_statement"].startswith("before the roll-up")
    assert comparison["leaderboard top-10"]["unindexed_statement"] is None
    explain = (out / "bench-smoke-explain.txt").read_text()
    indexed = explain.split("=== period leaderboard (week) (indexed")[1].split("===")[1]
    unindexed = explain.split("=== period leaderboard (week) (unindexed")[1].split("===")[1]
    assert " on member_period_points" in indexed and " on answers " not in indexed
    assert " on answers a" in unindexed
    assert results["pgbench"] is not None
    # Every measured stage carries the machine's speed; the flood table shows it with
    # the process CPU per answer.
    for v in results["variants"]:
        for stage in [*v["stages"], *([v["flood"]] if v.get("flood") else [])]:
            assert stage["process"]["probe_ms"] > 0, v["name"]
    flood = markdown.split("## Sustained answer rate: the answer flood")[1].split("\n## ")[0]
    header = next(line for line in flood.splitlines() if line.startswith("| variant"))
    assert (
        "| CPU µs per answer | server CPU | server CPU µs per answer | speed probe ms |" in header
    )
    qb_row = next(line for line in flood.splitlines() if line.startswith("| quizbot |"))
    columns = header.split("|")
    cpu_per_answer = qb_row.split("|")[columns.index(" CPU µs per answer ")]
    assert float(cpu_per_answer.replace(",", "")) > 0
    if IN_CI:  # CI's server runs on the same machine, so its CPU is measured
        server_per_answer = qb_row.split("|")[columns.index(" server CPU µs per answer ")]
        assert float(server_per_answer.replace(",", "")) > 0
        for v in results["variants"]:
            for stage in [*v["stages"], *([v["flood"]] if v.get("flood") else [])]:
                assert stage["process"]["server_cpu_s"] > 0, v["name"]
        assert "- quizbot: " in flood and "cores at that cost allow at most" in flood


def test_smoke_own_rank_from_the_mirror_agrees_with_the_count(
    smoke: tuple[int, dict[str, Any], Path],
) -> None:
    _, results, out = smoke
    own = results["hot_queries"]["own_rank"]
    assert set(own["positions"]) == {"top", "middle", "bottom"}
    ranks = [own["positions"][p]["rank"] for p in ("top", "middle", "bottom")]
    assert ranks[0] == 1 and ranks[0] <= ranks[1] <= ranks[2]
    if own["mirror"] is None:  # no Redis: allowed on a developer's machine only
        assert not IN_CI, own["notes"]
        return
    assert own["mirror"]["built"]
    assert all(p["agree"] for p in own["positions"].values())
    assert "## Own rank wherever the member stands" in (out / "bench-smoke.md").read_text()


def test_smoke_statement_counts_are_sane(smoke: tuple[int, dict[str, Any], Path]) -> None:
    _, results, _ = smoke
    by_name = {v["name"]: v for v in results["variants"]}
    for name in ("quizbot-traced", "quizbot", "legacy", "raw"):
        commands: dict[str, Any] = {}
        for stage in by_name[name]["stages"]:
            assert stage["all"]["count"] > 0
            for command, c in stage["commands"].items():
                commands.setdefault(command, []).append(c)
        for command in ("start", "review", "answer", "finish", "stats", "leaderboard"):
            assert command in commands, (name, command)
    qb_stages = by_name["quizbot-traced"]["stages"]
    for stage in [*by_name["quizbot"]["stages"], *qb_stages]:
        c = stage["commands"]
        # Stats is one statement when it reaches the database (0 when served from the cache).
        assert c["stats"]["statements_max"] <= 1
        answer, batches = c["answer"], stage["batches"]
        # Answers are group-committed (the default): every answer was written by exactly
        # one batch, and each batch is recorded once, as two or three statements however
        # many answers it holds, in autocommit: the workload never moves a quiz while
        # its answers are being written, so no batch falls back to the transaction.
        assert batches is not None
        assert answer["group_committed"] == answer["count"] > 0
        assert answer["count"] <= batches["answers"] <= answer["count"] + answer["errors"]
        assert batches["attributed_answers"] == batches["answers"]
        assert batches["failed"] == 0
        assert 2 <= batches["statements_per_batch"] <= 3
        assert batches["tx_per_batch"] == 0  # no BEGIN and COMMIT
        assert batches["statements_per_answer"] == pytest.approx(
            batches["statements"] / batches["answers"]
        )
        # An answer is charged its share of its batch (plus its own statements, e.g. a
        # question cache miss): at most a few statements and often less than one; never a
        # statement per item.
        assert batches["statements_per_answer"] - 1e-9 <= answer["statements_mean"] <= 4
        assert answer["statements_max"] <= 8
    legacy_stats = [s["commands"]["stats"]["statements_mean"] for s in by_name["legacy"]["stages"]]
    # The N+1 baseline issues several statements per stats call.
    assert min(legacy_stats) >= 6
    # The replay runs exactly the statements quizbot issued, each batch once. (A review
    # is a solo player's second quiz: a stage may end before any player gets there, in
    # quizbot's traced run and so in the replay of it.)
    for q, r in zip(qb_stages, by_name["raw"]["stages"], strict=True):
        ran = set(q["commands"])
        # (Start and advance include their shares of the message batches.)
        for command in ran & {"answer", "stats", "start", "review", "advance"}:
            assert r["commands"][command]["statements_mean"] == pytest.approx(
                q["commands"][command]["statements_mean"]
            ), command
        for key in ("batches", "answers", "statements"):
            assert r["batches"][key] == q["batches"][key], key
        # ... and sends them as quizbot did: BEGIN/COMMIT only where quizbot had them
        # (a start is one statement in autocommit, a finish one transaction).
        for command in ran & {"start", "review", "finish", "stats"}:
            assert r["commands"][command]["tx_mean"] == pytest.approx(
                q["commands"][command]["tx_mean"]
            ), command
    # Every variant that reached the database held connections for it, and never for
    # longer than the commands took.
    for name in ("quizbot", "raw", "legacy"):
        for stage in by_name[name]["stages"]:
            for command in set(stage["commands"]) & {"start", "review", "finish"}:
                c = stage["commands"][command]
                assert 0 < c["held_mean_ms"] <= c["mean_ms"], (name, command)


def test_smoke_measures_one_statement_through_each_layer(
    smoke: tuple[int, dict[str, Any], Path],
) -> None:
    _, results, out = smoke
    rows = results["statement_layers"]
    assert [r["layer"].split()[0].strip(",") for r in rows] == [
        "ORM",
        "guarded",
        "quizbot's",
        "asyncpg",
        "asyncpg's",
        "asyncpg",
    ]
    for r in rows:
        assert r["calls"] > 0 and r["cpu_us"] > 0 and r["wall_us"] > 0
    assert "## One statement, layer by layer" in (out / "bench-smoke.md").read_text()


def test_smoke_measures_an_answer_burst_alone(smoke: tuple[int, dict[str, Any], Path]) -> None:
    _, results, out = smoke
    burst = results["answer_burst"]
    # Every player of the smoke scale's top load, a burst per question after the first.
    assert burst["players"] == max(SCALES["smoke"].players)
    assert burst["bursts"] >= 1
    assert burst["cpu_us_per_answer"] > 0 and burst["wall_ms_per_burst"] > 0
    assert "server_cpu_us_per_answer" in burst
    if IN_CI:  # CI's server runs on the same machine, so its CPU is measured
        server = burst["server_cpu_us_per_answer"]
        assert server is not None and server > 0, f"the burst's server CPU: {server}"
    # Group-committed: a burst's answers go in a handful of batches, not one each.
    assert 1 <= burst["batches_per_burst"] < burst["players"] / 2
    assert "## An answer burst, measured alone" in (out / "bench-smoke.md").read_text()


async def test_raw_replay_pool_keeps_the_session_as_quizbot_does() -> None:
    """The raw replay's pool sends no reset query when a connection comes back (quizbot
    sends none, so the replay must not pay one per command) and runs with jit off, as
    quizbot's connections do."""
    from bench.database import asyncpg_args
    from bench.raw import create_pool
    from quizbot.config import Settings
    from quizbot.db import connect_args

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    pool = await create_pool(
        asyncpg_args(server_url()),
        min_size=1,
        max_size=1,
        server_settings=connect_args(settings)["server_settings"],
    )
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'raw-replay-kept'")
            server_pid = conn.get_server_pid()
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == server_pid  # the same connection again
            # asyncpg's default reset (RESET ALL) would have put the setting back.
            assert await conn.fetchval("SHOW application_name") == "raw-replay-kept"
            assert await conn.fetchval("SHOW jit") == "off"
        # A transaction left open is still rolled back at release (asyncpg's own part
        # of the reset, which reports it to the loop's exception handler).
        loop = asyncio.get_running_loop()
        reported: list[str] = []
        previous = loop.get_exception_handler()
        loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
        try:
            async with pool.acquire() as conn:
                await conn.execute("BEGIN")
        finally:
            loop.set_exception_handler(previous)
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == server_pid
            assert not conn.is_in_transaction()
        assert reported and "active transaction" in reported[0]
    finally:
        await pool.close()


async def test_raw_replay_begins_transactions_as_quizbot_did() -> None:
    """A transaction quizbot began with generic plans (a quiz's end) is replayed so, in
    the same one message; the others as asyncpg begins them. The setting ends with the
    transaction, committed or rolled back."""
    import asyncpg

    from bench.database import asyncpg_args
    from bench.metrics import BEGIN_GENERIC_PLANS
    from bench.raw import _transaction, _Unit, _units

    captured = [
        (BEGIN_GENERIC_PLANS, ()),
        ("SELECT 1", ()),
        ("COMMIT", ()),
        ("SELECT $1", (2,)),
        ("BEGIN", ()),
        ("SELECT 3", ()),
        ("ROLLBACK", ()),
    ]
    assert _units(captured) == [
        _Unit([("SELECT 1", ())], True, True),
        _Unit([("SELECT $1", (2,))], None),
        _Unit([("SELECT 3", ())], False, False),
    ]
    conn = await asyncpg.connect(**asyncpg_args(server_url()))
    try:
        for generic_plans, mode in ((True, "force_generic_plan"), (False, "auto")):
            async with _transaction(conn, generic_plans=generic_plans):
                assert conn.is_in_transaction()
                assert await conn.fetchval("SHOW plan_cache_mode") == mode
            assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
            with pytest.raises(ZeroDivisionError):
                async with _transaction(conn, generic_plans=generic_plans):
                    await conn.fetchval("SELECT 1 / 0.5")
                    raise ZeroDivisionError
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
    finally:
        await conn.close()
