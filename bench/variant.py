"""One variant's run, in a process of its own (fresh event loop, fresh RSS and CPU counters).

The runner starts `run_variant` in a spawned child process per variant, so a
variant's peak RSS, CPU time and event-loop lag are its own.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import integrity
from bench.config import Scale, served
from bench.database import asyncpg_args, libpq_dsn, local_server_cpu
from bench.metrics import (
    BACKGROUND,
    BatchRecord,
    ProcessMonitor,
    Recorder,
    batch_summary,
    percentile,
    process_totals,
)
from bench.workload import Ack, Driver, Stage, StageTrace

# An unrecorded warm-up before the first stage (seconds, at most one stage long).
WARMUP_S = 3.0
WARMUP_INDEX = 99
FLOOD_INDEX = 98


@dataclass(frozen=True)
class VariantSpec:
    """What one child process runs."""

    name: str
    kind: str  # "quizbot", "legacy" or "raw"
    url: str
    scale: Scale
    seed: int
    give_up_p95_s: float
    overrides: dict[str, Any] = field(default_factory=dict)
    # quizbot: write the trace for the raw replay here; raw: read it from here.
    trace_path: str | None = None
    progress: bool = True
    pool_size: int = 20
    max_overflow: int = 0
    note: str = ""
    # After the ramp: a stage of this many players with no think time (0: none), for the
    # sustained answer rate; as long as a ramp stage.
    flood_players: int = 0
    # Write a cProfile report (text) of the whole child here (the profiler slows it down).
    profile_path: str | None = None
    # After the flood, these loads one after another while the last stage was `served`
    # (`Scale.capacity_players`; the runner gives them to quizbot and legacy only).
    capacity_players: tuple[int, ...] = ()


def _stage_summary(
    players: int,
    seconds: float,
    recorder: Recorder,
    process: dict[str, float | None],
    batches: list[BatchRecord] | None = None,
) -> dict[str, Any]:
    commands = {name: s.summary(seconds) for name, s in sorted(recorder.commands.items())}
    everything = [x * 1000 for s in recorder.commands.values() for x in s.latencies]
    total = sum(len(s.latencies) for s in recorder.commands.values())
    return {
        "players": players,
        "seconds": seconds,
        "commands": commands,
        "all": {
            "count": total,
            "errors": sum(s.errors for s in recorder.commands.values()),
            "throughput": total / seconds if seconds > 0 else 0.0,
            "p50_ms": percentile(everything, 50),
            "p95_ms": percentile(everything, 95),
            "p99_ms": percentile(everything, 99),
            "max_ms": max(everything, default=0.0),
            "worst_command_p95_ms": max((c["p95_ms"] for c in commands.values()), default=0.0),
        },
        "process": process,
        # Group-committed answers: each flush once (its answers carry a share of it).
        "batches": batch_summary(batches or [], seconds),
    }


class _Ticker:
    """A rich progress bar for the stages of this variant (in the child's terminal)."""

    def __init__(self, spec: VariantSpec) -> None:
        self.progress: Any = None
        if spec.progress:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    async def follow(self, label: str, seconds: float, counter: Any) -> None:
        if self.progress is None:
            return
        task = self.progress.add_task(label, total=seconds, info="")
        began = time.perf_counter()
        try:
            while True:
                elapsed = time.perf_counter() - began
                self.progress.update(
                    task,
                    completed=min(elapsed, seconds),
                    info=f"{counter()} commands",
                )
                await asyncio.sleep(0.25)
        finally:
            self.progress.remove_task(task)

    def __enter__(self) -> _Ticker:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


async def _measured(
    work: Coroutine[Any, Any, float], monitor: ProcessMonitor, progress: Coroutine[Any, Any, None]
) -> tuple[float, dict[str, float | None]]:
    """Run one stage's `work` with the process monitor on and its progress bar shown.

    Returns the stage's seconds and the process figures (loop lag, CPU, RSS).
    """
    monitor.start()
    follow = asyncio.create_task(progress)
    try:
        seconds = await work
    finally:
        follow.cancel()
        await asyncio.gather(follow, return_exceptions=True)
    return seconds, await monitor.stop()


async def _drive(spec: VariantSpec) -> dict[str, Any]:
    driver: Any
    extra: dict[str, Any] = {}
    if spec.kind == "quizbot":
        from bench.quizbot_driver import QuizbotDriver

        driver = QuizbotDriver(spec.url, spec.overrides)
        extra["overrides_applied"] = {k: repr(v) for k, v in driver.applied.items()}
        extra["overrides_skipped"] = driver.skipped
    elif spec.kind == "legacy":
        from bench.legacy import LegacyDriver

        driver = LegacyDriver(libpq_dsn(spec.url))
    else:
        raise ValueError(f"unknown variant kind {spec.kind}")
    await driver.setup()
    BACKGROUND.statements = 0  # start-up work is not the workload's
    monitor = ProcessMonitor(await local_server_cpu(spec.url))
    stages: list[dict[str, Any]] = []
    capacity_stages: list[dict[str, Any]] = []
    acks: list[Ack] = []
    traces: list[StageTrace] = []
    capture = spec.kind == "quizbot" and spec.trace_path is not None
    gave_up: int | None = None
    scale_totals: dict[str, float] | None = None
    warmup: dict[str, Any] | None = None
    flood: dict[str, Any] | None = None

    def too_slow(summary: dict[str, Any]) -> bool:
        """Past the give-up limit: the variant stops ramping."""
        return bool(summary["all"]["p95_ms"] > spec.give_up_p95_s * 1000)

    async def measured(stage: Stage, label: str) -> dict[str, Any]:
        """Run one recorded stage with its progress bar; keep its acks and trace."""
        seconds, process = await _measured(
            stage.run(spec.scale.stage_seconds),
            monitor,
            ticker.follow(label, spec.scale.stage_seconds, lambda: stage.done_commands),
        )
        acks.extend(stage.acks)
        if stage.capture:
            traces.append(stage.trace)
        return _stage_summary(stage.players, seconds, stage.recorder, process, stage.batches)

    with _Ticker(spec) as ticker:
        try:
            if WARMUP_S > 0:
                # Unrecorded: fills caches and pools, prepares statements, as a running bot has.
                seconds_w = min(WARMUP_S, spec.scale.stage_seconds)
                stage = Stage(
                    driver,
                    spec.scale,
                    spec.scale.players[0],
                    WARMUP_INDEX,
                    seed=spec.seed,
                    capture=capture,
                    warmup=True,
                )
                wall = await stage.run(seconds_w)
                warmup = {"players": spec.scale.players[0], "seconds": wall}
                acks.extend(stage.acks)
                if capture:
                    traces.append(stage.trace)
            for index, players in enumerate(spec.scale.players):
                typed: Driver = driver
                stage = Stage(typed, spec.scale, players, index, seed=spec.seed, capture=capture)
                stages.append(await measured(stage, f"{spec.name}: {players} players"))
                if too_slow(stages[-1]):
                    gave_up = players
                    break
            if spec.flood_players:
                stage = Stage(
                    driver,
                    spec.scale,
                    spec.flood_players,
                    FLOOD_INDEX,
                    seed=spec.seed,
                    capture=capture,
                    flood=True,
                )
                flood = await measured(stage, f"{spec.name}: flood, {spec.flood_players} players")
            # The process's CPU and peak memory at the scale's loads (the RSS target's),
            # before the capacity stages grow them.
            scale_totals = process_totals()
            first = len(spec.scale.players)
            for index, players in enumerate(spec.capacity_players, start=first):
                last = capacity_stages[-1] if capacity_stages else stages[-1]
                if gave_up is not None or not served(last):
                    break  # its capacity is known: a larger load would only queue
                # Never traced: the raw replay knows ramp, warm-up and flood stages only.
                stage = Stage(driver, spec.scale, players, index, seed=spec.seed, capture=False)
                capacity_stages.append(
                    await measured(stage, f"{spec.name}: {players} players (capacity)")
                )
                if too_slow(capacity_stages[-1]):
                    gave_up = players
        finally:
            monitor.close()
            await driver.close()
    # The legacy design writes answers without quizbot's per-day roll-up.
    check = await integrity.check(asyncpg_args(spec.url), acks, daily_points=spec.kind != "legacy")
    return {
        "stages": stages,
        "capacity_stages": capacity_stages,
        "integrity": check,
        "gave_up_at": gave_up,
        "warmup": warmup,
        "flood": flood,
        "scale_totals": scale_totals,
        "_traces": traces if capture else None,
        **extra,
    }


async def _replay(spec: VariantSpec, traces: list[StageTrace]) -> dict[str, Any]:
    from bench.quizbot_driver import settings_with
    from bench.raw import Replayer, create_pool
    from quizbot.db import answer_writer_generic_plans, connect_args
    from quizbot.services.quiz import MESSAGE_FLUSHES

    settings, _applied, _skipped = settings_with(spec.url, spec.overrides)
    pool = await create_pool(
        asyncpg_args(spec.url),
        min_size=spec.pool_size,
        max_size=spec.pool_size + spec.max_overflow,
        server_settings=connect_args(settings)["server_settings"],
    )
    # The answer and message batches on connections of their own (the replay flushes
    # one answer batch and up to MESSAGE_FLUSHES message batches at a time), with the
    # answer writer's server settings (ANSWER_GENERIC_PLANS).
    writers = 1 + MESSAGE_FLUSHES
    writer_pool = await create_pool(
        asyncpg_args(spec.url),
        min_size=writers,
        max_size=writers,
        server_settings=connect_args(settings, generic_plans=answer_writer_generic_plans(settings))[
            "server_settings"
        ],
    )
    replayer = Replayer(pool, writer_pool)
    monitor = ProcessMonitor(await local_server_cpu(spec.url))
    stages: list[dict[str, Any]] = []
    flood: dict[str, Any] | None = None
    try:
        with _Ticker(spec) as ticker:
            for trace in traces:
                recorder = Recorder()
                if trace.warmup:
                    await replayer.replay(trace, recorder)
                    continue
                seconds, process = await _measured(
                    replayer.replay(trace, recorder),
                    monitor,
                    ticker.follow(
                        f"{spec.name}: {trace.players} players",
                        spec.scale.stage_seconds,
                        lambda r=recorder: sum(len(s.latencies) for s in r.commands.values()),
                    ),
                )
                summary = _stage_summary(
                    trace.players, seconds, recorder, process, replayer.batches
                )
                if trace.flood:
                    flood = summary
                else:
                    stages.append(summary)
    finally:
        monitor.close()
        await pool.close()
        await writer_pool.close()
    # The answers the replay acknowledged: quizbot's acknowledged answers whose replayed
    # writes committed here (session ids remapped).
    check = await integrity.check(asyncpg_args(spec.url), replayer.acks)
    return {
        "stages": stages,
        "integrity": check,
        "gave_up_at": None,
        "flood": flood,
        "unmapped_session_ids": replayer.unmapped,
        "batches_forced": replayer.batches_forced,
    }


async def _main(spec: VariantSpec, traces: list[StageTrace] | None) -> dict[str, Any]:
    if spec.kind == "raw":
        assert traces is not None
        result = await _replay(spec, traces)
    else:
        result = await _drive(spec)
    result.update(
        name=spec.name,
        kind=spec.kind,
        note=spec.note,
        overrides={k: repr(v) for k, v in spec.overrides.items()},
        process_totals=process_totals(),
        background_statements=BACKGROUND.statements,
    )
    return result


def run_variant(spec: VariantSpec) -> dict[str, Any]:
    """Entry point of the child process: run the variant on uvloop, like the bot."""
    from quizbot.cli import run_async

    traces = None
    if spec.kind == "raw":
        assert spec.trace_path is not None
        traces = pickle.loads(Path(spec.trace_path).read_bytes())
    if spec.profile_path:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            result = run_async(_main(spec, traces))
        finally:
            profiler.disable()
            _write_profile(profiler, Path(spec.profile_path))
    else:
        result = run_async(_main(spec, traces))
    captured = result.pop("_traces", None)
    if captured is not None and spec.trace_path:
        blob = pickle.dumps(captured)
        Path(spec.trace_path).write_bytes(blob)
        # The trace stays in this process's memory during the run: its size matters for RSS.
        result["trace_mb"] = len(blob) / 1024 / 1024
    return result


def _write_profile(profiler: Any, path: Path) -> None:
    import io
    import pstats

    out = io.StringIO()
    for key in ("tottime", "cumulative"):
        out.write(f"==== top 40 functions by {key} ====\n")
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(40)
    path.write_text(out.getvalue())
