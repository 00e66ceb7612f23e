"""What the benchmark measures inside one variant's process.

- per command: latency (from the moment the simulated player clicked, so time
  spent waiting for a blocked event loop counts), SQL statements, pool wait;
- per process: event-loop lag (a ticker that measures how late it wakes up),
  CPU time and resident memory.

Statements and pool waits are attributed to the command being run through a
context variable: asyncio tasks (and SQLAlchemy's greenlets) inherit it, so
concurrent commands never mix their counts.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

# Sampling period of the event-loop ticker.
TICK_S = 0.01


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Invocation:
    """One command being run: what it cost the database."""

    name: str
    statements: int = 0
    pool_wait_s: float = 0.0
    checkouts: int = 0
    pings: int = 0
    # BEGIN / COMMIT / ROLLBACK: round trips too, though not statements of ours.
    tx: int = 0
    # (SQL as sent to the driver, positional parameters), when capturing for the raw replay.
    captured: list[tuple[str, tuple[Any, ...]]] | None = None
    open: bool = True


CURRENT: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "bench_invocation", default=None
)


@dataclass
class Background:
    """Statements issued outside any command (e.g. a group-commit flusher task)."""

    statements: int = 0
    pool_wait_s: float = 0.0
    # (time, SQL, parameters) while a stage captures for the raw replay.
    captured: list[tuple[float, str, tuple[Any, ...]]] | None = None


BACKGROUND = Background()


def count_statement(statement: str, parameters: Any) -> None:
    """Attribute one statement to the running command (or to the background)."""
    inv = CURRENT.get()
    params = tuple(parameters) if isinstance(parameters, list | tuple) else ()
    if inv is None or not inv.open:
        BACKGROUND.statements += 1
        if BACKGROUND.captured is not None:
            BACKGROUND.captured.append((time.perf_counter(), statement, params))
        return
    inv.statements += 1
    if inv.captured is not None:
        inv.captured.append((statement, params))


def count_pool_wait(seconds: float) -> None:
    """Attribute the time spent getting a pooled connection."""
    inv = CURRENT.get()
    if inv is None or not inv.open:
        BACKGROUND.pool_wait_s += seconds
        return
    inv.pool_wait_s += seconds
    inv.checkouts += 1


def count_ping() -> None:
    """A pool pre-ping: one more round trip of the running command."""
    inv = CURRENT.get()
    if inv is not None and inv.open:
        inv.pings += 1


def count_tx() -> None:
    """A transaction-control round trip (BEGIN, COMMIT or ROLLBACK) of the running command."""
    inv = CURRENT.get()
    if inv is not None and inv.open:
        inv.tx += 1


@contextmanager
def invocation(name: str, *, capture: bool = False) -> Iterator[Invocation]:
    """Run a block as command `name`: statements and pool waits inside count for it."""
    inv = Invocation(name, captured=[] if capture else None)
    token = CURRENT.set(inv)
    try:
        yield inv
    finally:
        inv.open = False
        CURRENT.reset(token)


@dataclass
class CommandStats:
    """Every sample of one command in one stage."""

    latencies: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    pool_waits: list[float] = field(default_factory=list)
    pings: list[int] = field(default_factory=list)
    tx: list[int] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def add(self, latency: float, inv: Invocation) -> None:
        self.latencies.append(latency)
        self.statements.append(inv.statements)
        self.pool_waits.append(inv.pool_wait_s)
        self.pings.append(inv.pings)
        self.tx.append(inv.tx)

    def fail(self, exc: BaseException) -> None:
        self.errors += 1
        kind = type(exc).__name__
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def summary(self, seconds: float) -> dict[str, Any]:
        """Throughput, latency percentiles (ms), statements and pool wait per command."""
        n = len(self.latencies)
        lat = [x * 1000 for x in self.latencies]
        waits = [x * 1000 for x in self.pool_waits]
        return {
            "count": n,
            "errors": self.errors,
            "error_kinds": dict(self.error_kinds),
            "throughput": n / seconds if seconds > 0 else 0.0,
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
            "p99_ms": percentile(lat, 99),
            "max_ms": max(lat, default=0.0),
            "mean_ms": sum(lat) / n if n else 0.0,
            "statements_mean": sum(self.statements) / n if n else 0.0,
            "statements_max": max(self.statements, default=0),
            "pings_mean": sum(self.pings) / n if n else 0.0,
            "tx_mean": sum(self.tx) / n if n else 0.0,
            "round_trips_mean": (sum(self.statements) + sum(self.pings) + sum(self.tx)) / n
            if n
            else 0.0,
            "pool_wait_mean_ms": sum(waits) / n if n else 0.0,
            "pool_wait_p95_ms": percentile(waits, 95),
            "pool_wait_max_ms": max(waits, default=0.0),
        }


class Recorder:
    """The samples of one stage, by command."""

    def __init__(self) -> None:
        self.commands: dict[str, CommandStats] = {}

    def stats(self, name: str) -> CommandStats:
        return self.commands.setdefault(name, CommandStats())


class ProcessMonitor:
    """Event-loop lag and process resources, sampled by a task on the loop itself."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.rss_peak = 0
        self._task: asyncio.Task[None] | None = None
        self._proc = psutil.Process()
        self._cpu0 = 0.0
        self._wall0 = 0.0

    async def _tick(self) -> None:
        samples = 0
        while True:
            before = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.lags.append(max(0.0, time.perf_counter() - before - TICK_S))
            samples += 1
            if samples % 10 == 0:
                self.rss_peak = max(self.rss_peak, self._proc.memory_info().rss)

    def start(self) -> None:
        """Begin a stage: reset the samples and start ticking."""
        self.lags = []
        self.rss_peak = self._proc.memory_info().rss
        times = self._proc.cpu_times()
        self._cpu0 = times.user + times.system
        self._wall0 = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> dict[str, float]:
        """End a stage; returns lag percentiles (ms), CPU seconds and share, peak RSS (MB)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        times = self._proc.cpu_times()
        cpu = times.user + times.system - self._cpu0
        wall = time.perf_counter() - self._wall0
        self.rss_peak = max(self.rss_peak, self._proc.memory_info().rss)
        lags = [x * 1000 for x in self.lags]
        return {
            "loop_lag_p50_ms": percentile(lags, 50),
            "loop_lag_p99_ms": percentile(lags, 99),
            "loop_lag_max_ms": max(lags, default=0.0),
            "cpu_s": cpu,
            "cpu_share": cpu / wall if wall > 0 else 0.0,
            "rss_peak_mb": self.rss_peak / 1024 / 1024,
        }


def process_totals() -> dict[str, float]:
    """The whole process so far: CPU seconds and peak RSS (MB, from getrusage)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_user_s": usage.ru_utime,
        "cpu_system_s": usage.ru_stime,
        # Linux reports kilobytes.
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }
