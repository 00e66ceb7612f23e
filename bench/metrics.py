"""What the benchmark measures inside one variant's process.

- per command: latency (from the moment the simulated player clicked, so time
  spent waiting for a blocked event loop counts), SQL statements, pool wait;
- per process: event-loop lag (a ticker that measures how late it wakes up),
  CPU time and resident memory; and, when PostgreSQL runs on this machine, the CPU
  time of the server's processes over the same stage.

Statements and pool waits are attributed to the command being run through a
context variable: asyncio tasks (and SQLAlchemy's greenlets) inherit it, so
concurrent commands never mix their counts.

Group-committed answers are the exception: their writes run in the committer's
background task, one transaction for every answer of a batch. Each flush is
recorded once, as a `BatchRecord` (its statements, BEGIN/COMMIT round trips, pool
wait, duration and the answers it covered), and each answer it covered is charged
an equal share of it: statements per answer = the batch's statements / its answers.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
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
    # Time between taking a pooled connection and giving it back: what others wait for.
    held_s: float = 0.0
    pings: int = 0
    # BEGIN / COMMIT / ROLLBACK: round trips too, though not statements of ours.
    tx: int = 0
    # (SQL as sent to the driver, positional parameters), when capturing for the raw replay.
    captured: list[tuple[str, tuple[Any, ...]]] | None = None
    open: bool = True
    # Also capture BEGIN / COMMIT / ROLLBACK as markers (a batch replays its transactions).
    tx_markers: bool = False
    # The group-commit batch that wrote this command's answer (its share is charged).
    batch: BatchRecord | None = None


# A captured transaction-control marker (SQL text); its parameters are empty. A
# transaction quizbot began with generic plans (`quizbot.driver.BEGIN_GENERIC_PLANS`)
# has a marker of its own, so that the raw replay begins it alike.
BEGIN_GENERIC_PLANS = "BEGIN GENERIC PLANS"
TX_MARKERS = ("BEGIN", BEGIN_GENERIC_PLANS, "COMMIT", "ROLLBACK")

# What a caller waits for in a group commit: an answer (session_id, question_id,
# user_id), or a question message (see `message_key`).
BatchKey = tuple[int, int, int]
AnswerKey = BatchKey


def message_key(session_id: int, message_id: int) -> BatchKey:
    """The key of a question message written by the message group commit."""
    return (session_id, -1, message_id)


@dataclass
class BatchRecord:
    """One group-commit flush: what it cost, once, and how many answers it covered."""

    index: int  # in its stage
    size: int  # answers (or messages) the flush covered
    attributed: int  # of which the benchmark's commands were waiting for
    full: bool  # the batch reached the committer's size limit (it did not wait)
    kind: str = "answers"  # or "messages": QuizService.set_message's group commit
    began: float = 0.0  # perf_counter when the flush began
    seconds: float = 0.0
    statements: int = 0
    tx: int = 0
    pings: int = 0
    pool_wait_s: float = 0.0
    held_s: float = 0.0
    failed: bool = False
    # Statements and TX_MARKERS in order, when capturing for the raw replay.
    captured: list[tuple[str, tuple[Any, ...]]] | None = None

    @property
    def round_trips(self) -> int:
        return self.statements + self.pings + self.tx


class BatchLog:
    """The batches flushed during the current stage, and the answers waiting for one."""

    def __init__(self) -> None:
        self.records: list[BatchRecord] = []
        self.capture = False
        self.waiting: dict[BatchKey, Invocation] = {}

    def start(self, *, capture: bool) -> None:
        """A stage begins: a fresh log."""
        self.records = []
        self.capture = capture

    def take(self) -> list[BatchRecord]:
        """A stage ends: its batches."""
        records, self.records = self.records, []
        self.capture = False
        return records

    @contextmanager
    def waiting_for(self, key: BatchKey) -> Iterator[None]:
        """The running command submitted `key` (an answer, a message) and waits for its
        batch."""
        inv = CURRENT.get()
        if inv is None:
            yield
            return
        self.waiting[key] = inv
        try:
            yield
        finally:
            if self.waiting.get(key) is inv:
                del self.waiting[key]

    @contextmanager
    def flush(
        self, keys: Sequence[BatchKey], *, full: bool = False, kind: str = "answers"
    ) -> Iterator[BatchRecord]:
        """Run a batch's flush: its statements count for the batch, not for a command."""
        record = BatchRecord(len(self.records), len(keys), 0, full, kind)
        self.records.append(record)
        for key in keys:
            inv = self.waiting.get(key)
            if inv is not None and inv.open:
                inv.batch = record
                record.attributed += 1
        inv = Invocation("batch", captured=[] if self.capture else None, tx_markers=True)
        token = CURRENT.set(inv)
        record.began = time.perf_counter()
        try:
            yield record
        except BaseException:
            record.failed = True
            raise
        finally:
            record.seconds = time.perf_counter() - record.began
            inv.open = False
            CURRENT.reset(token)
            record.statements, record.tx, record.pings = inv.statements, inv.tx, inv.pings
            record.pool_wait_s, record.held_s = inv.pool_wait_s, inv.held_s
            record.captured = inv.captured


BATCHES = BatchLog()


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


def count_tx(kind: str) -> None:
    """A transaction-control round trip (one of `TX_MARKERS`) of the running command."""
    inv = CURRENT.get()
    if inv is None or not inv.open:
        return
    inv.tx += 1
    if inv.tx_markers and inv.captured is not None:
        inv.captured.append((kind, ()))


def count_pool_wait(seconds: float) -> None:
    """Attribute the time spent getting a pooled connection."""
    inv = CURRENT.get()
    if inv is None or not inv.open:
        BACKGROUND.pool_wait_s += seconds
        return
    inv.pool_wait_s += seconds
    inv.checkouts += 1


def held_by_current() -> Invocation | None:
    """The running command, to charge a connection it checks out now (see `count_held`)."""
    inv = CURRENT.get()
    return inv if inv is not None and inv.open else None


def count_held(inv: Invocation | None, seconds: float) -> None:
    """A connection taken by `inv` (from `held_by_current`) was given back after `seconds`."""
    if inv is not None:
        inv.held_s += seconds


def count_ping() -> None:
    """A pool pre-ping: one more round trip of the running command."""
    inv = CURRENT.get()
    if inv is not None and inv.open:
        inv.pings += 1


@contextmanager
def invocation(name: str, *, capture: bool = False) -> Iterator[Invocation]:
    """Run a block as command `name`: statements and pool waits inside count for it."""
    # Captured with its BEGIN / COMMIT markers: the replay sends statements that quizbot
    # sent in autocommit alone, and transactions as transactions.
    inv = Invocation(name, captured=[] if capture else None, tx_markers=True)
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
    # Per sample; an answer's share of its batch makes these fractional.
    statements: list[float] = field(default_factory=list)
    pool_waits: list[float] = field(default_factory=list)
    held: list[float] = field(default_factory=list)
    pings: list[float] = field(default_factory=list)
    tx: list[float] = field(default_factory=list)
    # Size of the batch that wrote the sample's answer, or the message a start or a move
    # posted (0: not group-committed).
    batch_sizes: list[int] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def add(self, latency: float, inv: Invocation) -> None:
        """One sample; a group-committed answer is charged its share of the batch.

        The batch's pool wait is charged whole: every answer of the batch waited for it.
        """
        statements, pings, tx = float(inv.statements), float(inv.pings), float(inv.tx)
        pool_wait, held = inv.pool_wait_s, inv.held_s
        size = 0
        if inv.batch is not None and inv.batch.size:
            b, size = inv.batch, inv.batch.size
            statements += b.statements / size
            pings += b.pings / size
            tx += b.tx / size
            pool_wait += b.pool_wait_s
            held += b.held_s / size
        self.latencies.append(latency)
        self.statements.append(statements)
        self.pool_waits.append(pool_wait)
        self.held.append(held)
        self.pings.append(pings)
        self.tx.append(tx)
        self.batch_sizes.append(size)

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
            "statements_max": max(self.statements, default=0.0),
            "pings_mean": sum(self.pings) / n if n else 0.0,
            "tx_mean": sum(self.tx) / n if n else 0.0,
            "round_trips_mean": (sum(self.statements) + sum(self.pings) + sum(self.tx)) / n
            if n
            else 0.0,
            "group_committed": sum(1 for b in self.batch_sizes if b),
            "batch_size_mean": sum(self.batch_sizes) / n if n else 0.0,
            "pool_wait_mean_ms": sum(waits) / n if n else 0.0,
            "pool_wait_p95_ms": percentile(waits, 95),
            "pool_wait_max_ms": max(waits, default=0.0),
            # Connection time per command (an answer: its share of the batch's).
            "held_mean_ms": sum(self.held) * 1000 / n if n else 0.0,
        }


def batch_summary(records: Sequence[BatchRecord], seconds: float) -> dict[str, Any] | None:
    """A stage's group-committed answer batches, each counted once (None: no batch).

    The message batches are left out: their figures would blur the answers'.
    """
    records = [r for r in records if r.kind == "answers"]
    if not records:
        return None
    n = len(records)
    answers = sum(r.size for r in records)
    statements = sum(r.statements for r in records)
    trips = sum(r.round_trips for r in records)
    flush = [r.seconds * 1000 for r in records]
    return {
        "batches": n,
        "answers": answers,
        "attributed_answers": sum(r.attributed for r in records),
        "failed": sum(r.failed for r in records),
        "full": sum(r.full for r in records),
        "per_second": n / seconds if seconds > 0 else 0.0,
        "size_mean": answers / n,
        "size_max": max(r.size for r in records),
        "statements": statements,
        "statements_per_batch": statements / n,
        "tx_per_batch": sum(r.tx for r in records) / n,
        "round_trips_per_batch": trips / n,
        "statements_per_answer": statements / answers if answers else 0.0,
        "round_trips_per_answer": trips / answers if answers else 0.0,
        "flush_p50_ms": percentile(flush, 50),
        "flush_p95_ms": percentile(flush, 95),
        "flush_max_ms": max(flush),
    }


class Recorder:
    """The samples of one stage, by command."""

    def __init__(self) -> None:
        self.commands: dict[str, CommandStats] = {}

    def stats(self, name: str) -> CommandStats:
        # Not setdefault: that builds a CommandStats on every call, and this runs for
        # every simulated click, in the bot's process (the profile showed it).
        stats = self.commands.get(name)
        if stats is None:
            stats = self.commands[name] = CommandStats()
        return stats


PROBE_LOOPS = 20_000  # about 1 ms of pure Python on the development VMs
SAMPLE_EVERY_S = 0.25  # the speed sampler's pause between two probes


def speed_probe(runs: int = 3) -> float:
    """The fastest of `runs` runs of a fixed piece of pure Python, in milliseconds:
    how fast the core running it was at that moment (the fastest run leaves out time
    the process was not on a core)."""
    best = math.inf
    for _ in range(runs):
        began = time.perf_counter()
        total = 0
        for i in range(PROBE_LOOPS):
            total += i * i % 7
        best = min(best, time.perf_counter() - began)
    return best * 1000


# The sampler's own process: a probe every SAMPLE_EVERY_S seconds, one line each
# ("<monotonic time> <ms>") appended to the file it is given, until its parent is gone;
# then it removes the file (a parent that died never reached `SpeedSampler.close`).
_SAMPLER = f"""
import os, sys, time
from bench.metrics import speed_probe
path, parent = sys.argv[1], int(sys.argv[2])
with open(path, "a", buffering=1) as out:
    while os.getppid() == parent:
        out.write(f"{{time.monotonic()}} {{speed_probe()}}\\n")
        time.sleep({SAMPLE_EVERY_S})
os.unlink(path)
"""


class SpeedSampler:
    """The machine's speed through a variant's run, probed by a process of its own.

    The development VMs share their hosts, and a core's speed moves within seconds:
    back to back on an idle VM, the probe took 1.04-1.13 ms on one core and up to
    2.2 ms on the other, and then the other way round. At equal code the bot's CPU per
    answer in a flood varied by 30 % between runs, and everything measured with it.
    A stage's median probe says how fast the machine was while the stage ran. The
    sampler costs about 1.5 % of a core. It runs on whichever core the kernel gives
    it, so a probe also waits for what else runs there, the benchmark's own load
    included: an indication of the machine's state, not a measure to scale by.
    """

    def __init__(self) -> None:
        handle, name = tempfile.mkstemp(prefix="quizbot-speed-", suffix=".txt")
        os.close(handle)
        self._path = Path(name)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _SAMPLER, str(self._path), str(os.getpid())],
                cwd=Path(__file__).resolve().parent.parent,
            )

    def median(self, since: float, until: float) -> float | None:
        """The median probe (ms) taken between two `time.monotonic()` readings."""
        samples = []
        # The last piece is empty or a line still being written: not a sample.
        for line in self._path.read_text().split("\n")[:-1]:
            at, _, ms = line.partition(" ")
            if ms and since <= float(at) <= until:
                samples.append(float(ms))
        return statistics.median(samples) if samples else None

    def close(self) -> None:
        try:
            if self._process is not None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                self._process = None
        finally:
            self._path.unlink(missing_ok=True)


# Passes over the server's processes before a reading is taken as it is (see seconds()).
READ_ATTEMPTS = 5
# How far the local process's start may be from the server's own start time: the two
# clocks are the same, but psutil derives a start from boot time and clock ticks.
START_TOLERANCE_S = 2.0


class ServerCpu:
    """CPU seconds used by a PostgreSQL server on this machine: its postmaster and every
    process it started (backends, autovacuum, the WAL writer, the checkpointer).

    Why: on two shared cores the bot and the server split the machine, so what an
    answer costs the server bounds the answer rate as much as what it costs the bot.
    A process that exits (an autovacuum worker, a backend closed mid-stage) is counted
    through the postmaster's children's totals once the postmaster has reaped it. The
    reading covers the whole server: it is the variant's own only while nothing else
    uses the server, as in a benchmark run.
    """

    def __init__(self, postmaster: int) -> None:
        self._postmaster = psutil.Process(postmaster)

    def seconds(self) -> float | None:
        """CPU seconds so far (user and system); None once the server is gone.

        A child reaped while its brothers are read would be in neither part (gone from
        the live ones, not yet in the postmaster's totals when those were read), and a
        stage's figure would be off by that child's whole life: the pass is read again
        until the reaped totals stay the same through it and every child was read.
        """
        estimate: float | None = None
        for _ in range(READ_ATTEMPTS):
            try:
                before = self._postmaster.cpu_times()
                live, complete = 0.0, True
                for child in self._postmaster.children():
                    try:
                        times = child.cpu_times()
                    except psutil.Error:
                        complete = False  # exited since the listing
                        continue
                    live += times.user + times.system
                after = self._postmaster.cpu_times()
            except psutil.Error:
                return estimate
            reaped: float = after.children_user + after.children_system
            estimate = after.user + after.system + reaped + live
            if complete and reaped == before.children_user + before.children_system:
                break
        return estimate


def local_postmaster(backend_pid: int, database: str, server_started: float) -> int | None:
    """The postmaster's pid when `backend_pid` (a connection's `pg_backend_pid()`) is a
    process of this machine; else None (a server elsewhere, or processes this user
    cannot see).

    A remote server's backend pid may be some local process's pid, even a local
    PostgreSQL's: the process must name the connection's database on its command line
    ("postgres: [cluster: ]user database host(port) state"), and its parent must have
    started when the server says it did (`server_started`, seconds since the epoch,
    from `pg_postmaster_start_time()`).
    """
    try:
        backend = psutil.Process(backend_pid)
        if database not in " ".join(backend.cmdline()):
            return None
        parent = backend.parent()
        if parent is None or parent.name() not in ("postgres", "postmaster"):
            return None
        if abs(parent.create_time() - server_started) > START_TOLERANCE_S:
            return None
        parent.cpu_times()  # readable?
        pid: int = parent.pid
    except psutil.Error:
        return None
    return pid


class ProcessMonitor:
    """Event-loop lag and process resources, sampled by a task on the loop itself;
    and the local server's CPU over each stage when `server` is given."""

    def __init__(self, server: ServerCpu | None = None) -> None:
        self.server = server
        self._server0: float | None = None
        self.lags: list[float] = []
        self.rss_peak = 0
        self._task: asyncio.Task[None] | None = None
        self._proc = psutil.Process()
        self._cpu0 = 0.0
        self._wall0 = 0.0
        self._since = 0.0
        # Started here, before the warm-up: its own start-up is in no stage.
        self.speed = SpeedSampler()
        self.speed.start()

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
        self._since = time.monotonic()
        self.lags = []
        self.rss_peak = self._proc.memory_info().rss
        times = self._proc.cpu_times()
        self._cpu0 = times.user + times.system
        self._server0 = self.server.seconds() if self.server is not None else None
        self._wall0 = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> dict[str, float | None]:
        """End a stage; returns lag percentiles (ms), CPU seconds and share, the local
        server's CPU seconds and share, peak RSS (MB) and the speed sampler's median
        probe over the stage (ms)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        times = self._proc.cpu_times()
        cpu = times.user + times.system - self._cpu0
        server_now = self.server.seconds() if self.server is not None else None
        server = (
            server_now - self._server0
            if server_now is not None and self._server0 is not None
            else None
        )
        wall = time.perf_counter() - self._wall0
        self.rss_peak = max(self.rss_peak, self._proc.memory_info().rss)
        lags = [x * 1000 for x in self.lags]
        return {
            "loop_lag_p50_ms": percentile(lags, 50),
            "loop_lag_p99_ms": percentile(lags, 99),
            "loop_lag_max_ms": max(lags, default=0.0),
            "cpu_s": cpu,
            "cpu_share": cpu / wall if wall > 0 else 0.0,
            # The local server's processes over the stage; None when not measured.
            "server_cpu_s": server,
            "server_cpu_share": server / wall if server is not None and wall > 0 else None,
            "rss_peak_mb": self.rss_peak / 1024 / 1024,
            # None when the sampler took no probe during the stage.
            "probe_ms": self.speed.median(self._since, time.monotonic()),
        }

    def close(self) -> None:
        """Stop the speed sampler (at the variant's end)."""
        self.speed.close()


def process_totals() -> dict[str, float]:
    """The whole process so far: CPU seconds and peak RSS (MB, from getrusage)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_user_s": usage.ru_utime,
        "cpu_system_s": usage.ru_stime,
        # Linux reports kilobytes.
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }
