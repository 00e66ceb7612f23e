"""The raw baseline: quizbot's own statements, replayed through a bare asyncpg pool.

The quizbot variant records, per player, every command it ran with the exact
SQL and parameters it sent to asyncpg, and when the player clicked. This replay
runs the same players, each click at the same time after the stage's start as in
quizbot (at once if the player's previous command is still running: latency
counts from the actual click), each command's statements on a pooled connection
as quizbot sent them (a statement quizbot ran in autocommit alone, a transaction's
statements in one transaction; the answer and question-message batches on
connections of their own, with the server settings of quizbot's answer writer, which
writes both), and nothing else: no ORM, no
services, no cache logic, no pre-ping, and no reset query when a connection returns
to the pool (asyncpg's default, which quizbot does not send). The difference to the
quizbot variant is what the ORM and our Python cost. (Clicking on quizbot's clock
rather than after the think time keeps the players in step as they were in quizbot,
so a batch's answers arrive together.)

Group-committed answers are written by the committer's background task, many
answers per transaction, so they are traced per batch, not per command: an
answer action carries only its own statements (e.g. a question cache miss) and
the index of the batch that wrote it. Each batch is replayed once, by a committer
task (one flush at a time), with the committer's policy: it is ready when every
answer it covered has arrived in the replay and the window has passed since the
first of them (at once if it was full); its transactions are replayed as quizbot
ran them (one, unless quizbot retried). Each of its answers is acknowledged when
it commits, like quizbot's callers, and is charged the same share of it. The
question messages that quizbot group-commits (`QuizService.set_message`) are
batches too, of the start or move that posted them, replayed the same way by a
committer of their own with no window and up to MESSAGE_FLUSHES flushes at once,
as quizbot writes them.

Session ids are the one thing that differs between the two databases: the
runner starts each variant's identity at its own base, so a parameter in the
quizbot range (also inside a batch's arrays) is a session id, remapped to the id
the replayed INSERT returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import asyncpg

from bench.metrics import BEGIN_GENERIC_PLANS, TX_MARKERS, BatchRecord, Recorder, invocation
from bench.workload import Ack, Action, BatchTrace, StageTrace
from quizbot import driver
from quizbot.services.quiz import MESSAGE_FLUSHES

QUIZBOT_SESSION_BASE = 5_000_000_000
REPLAY_SESSION_BASE = 7_000_000_000
# A batch still missing answers after this long is replayed anyway (and counted):
# the replay must never hang on a trace it cannot follow.
BATCH_ARRIVAL_TIMEOUT_S = 60.0


class _RolledBack(Exception):
    """Ends a replayed transaction that quizbot rolled back."""


class _PendingBatch:
    """A traced batch during the replay: the answers that arrived, then its outcome."""

    def __init__(self, trace: BatchTrace, ready: asyncio.Queue[_PendingBatch], window: float):
        self.trace = trace
        self.arrived = 0
        self.first: float | None = None
        self.queued = False
        self.done = asyncio.Event()
        self.error: BaseException | None = None
        self.record = BatchRecord(trace.index, trace.size, trace.attributed, trace.full, trace.kind)
        self._ready = ready
        self._window = window
        if trace.attributed == 0:
            self.enqueue()

    def enqueue(self) -> None:
        if not self.queued:
            self.queued = True
            self._ready.put_nowait(self)

    def arrive(self) -> None:
        """One of its answers was clicked in the replay."""
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.arrived += 1
        if self.arrived == self.trace.attributed:
            # Like the committer: a batch waits the window after its first answer,
            # unless it was full.
            wait = 0.0 if self.trace.full else self.first + self._window - now
            if wait > 0:
                asyncio.get_running_loop().call_later(wait, self.enqueue)
            else:
                self.enqueue()


Statements = list[tuple[str, tuple[Any, ...]]]


class _Unit(NamedTuple):
    """Statements quizbot sent together: in one transaction (`committed` says how it
    ended; `generic_plans`, whether it began with them), or one alone in autocommit
    (`committed` None)."""

    statements: Statements
    committed: bool | None
    generic_plans: bool = False


def _units(statements: Statements) -> list[_Unit]:
    """Split a capture at its markers, as quizbot sent it: one unit per transaction,
    and one for each statement sent in autocommit."""
    out: list[_Unit] = []
    current: Statements | None = None
    generic_plans = False
    for sql, params in statements:
        if sql in ("BEGIN", BEGIN_GENERIC_PLANS):
            current, generic_plans = [], sql == BEGIN_GENERIC_PLANS
        elif sql in TX_MARKERS:  # COMMIT or ROLLBACK
            if current:
                out.append(_Unit(current, sql == "COMMIT", generic_plans))
            current = None
        elif current is None:
            out.append(_Unit([(sql, params)], None))
        else:
            current.append((sql, params))
    if current:  # no end marker (should not happen): commit, as quizbot did
        out.append(_Unit(current, True, generic_plans))
    return out


@contextlib.asynccontextmanager
async def _transaction(conn: Any, *, generic_plans: bool) -> AsyncIterator[None]:
    """A transaction begun as quizbot began it. With generic plans, BEGIN and the
    setting go in one message (`quizbot.driver.BEGIN_GENERIC_PLANS`), as quizbot sends
    them; otherwise asyncpg's own transaction."""
    if not generic_plans:
        async with conn.transaction():
            yield
        return
    try:
        await conn.execute(driver.BEGIN_GENERIC_PLANS)
        yield
    except BaseException:
        if not conn.is_closed():
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


def _is_quizbot_session(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and QUIZBOT_SESSION_BASE <= value < REPLAY_SESSION_BASE
    )


async def create_pool(
    connect_args: dict[str, Any],
    *,
    min_size: int,
    max_size: int,
    server_settings: dict[str, str],
) -> asyncpg.Pool:
    """The replay's pool: bare asyncpg, with the server settings of the quizbot
    connections whose statements it replays.

    Args:
        connect_args: `asyncpg.connect` keyword arguments (`bench.database.asyncpg_args`).
        min_size: connections opened at once (quizbot's pool size; it opens all at start).
        max_size: at most this many (with quizbot's overflow).
        server_settings: quizbot's (`quizbot.db.connect_args`): `jit` off, and on the
            answer writer's connections generic plans, so that the server plans and runs
            the statements as it did for quizbot.
    """
    pool = await asyncpg.create_pool(
        **connect_args,
        min_size=min_size,
        max_size=max_size,
        statement_cache_size=500,
        server_settings=server_settings,
        # No reset query at release: by default asyncpg's pool sends `SELECT
        # pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` each time a
        # connection comes back, a round trip quizbot does not make. Until 2026-12-07 the
        # replay paid it inside every command's time: a one-row read through the pool
        # took 532-545 us with it, 261-279 us without (idle machine, smoke data).
        # asyncpg (>= 0.30) still rolls back a transaction left open before this runs.
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """The pool's reset at release: nothing beyond asyncpg's own (which rolls back a
    transaction left open)."""


class Replayer:
    """Replays traced stages on an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, writer_pool: asyncpg.Pool | None = None) -> None:
        """Args:
        pool: every command's statements.
        writer_pool: the answer and message batches' (default `pool`), as quizbot
            writes them on connections of their own, with their own server settings.
        """
        self.pool = pool
        self.writer_pool = writer_pool or pool
        self.sessions: dict[int, int] = {}
        self.unmapped = 0
        # The answers this replay acknowledged (replay session ids), for the integrity check.
        self.acks: list[Ack] = []
        self.batches_forced = 0
        self._began = time.perf_counter()
        self._pending: list[_PendingBatch] = []

    def _map(self, value: Any) -> Any:
        if isinstance(value, list):  # arrays of ids in batched statements
            return [self._map(v) for v in value]
        if _is_quizbot_session(value):
            mapped = self.sessions.get(value)
            if mapped is None:
                self.unmapped += 1
                return value
            return mapped
        return value

    def _params(self, params: tuple[Any, ...]) -> list[Any]:
        return [self._map(value) for value in params]

    def _ack(self, ack: Ack | None) -> None:
        if ack is not None:
            session_id = self.sessions.get(ack.session_id, ack.session_id)
            self.acks.append(Ack(session_id, ack.question_id, ack.user_id, ack.points))

    async def _run(self, action: Action, recorder: Recorder) -> None:
        now = time.perf_counter()
        # quizbot's click time in the stage; at once if the previous step ran late.
        due = now + action.delay if action.at is None else max(self._began + action.at, now)
        if due > now:
            await asyncio.sleep(due - now)
            due = min(due, time.perf_counter())  # ended early by the loop's clock (`click_at`)
        stats = recorder.stats(action.name)
        batch = self._pending[action.batch] if action.batch is not None else None
        with invocation(action.name) as inv:
            try:
                try:
                    if action.statements:
                        began = time.perf_counter()
                        async with self.pool.acquire() as conn:
                            taken = time.perf_counter()
                            inv.pool_wait_s += taken - began
                            inv.checkouts += 1
                            try:
                                for unit in _units(action.statements):
                                    inv.statements += len(unit.statements)
                                    if unit.committed is not None:
                                        inv.tx += 2  # BEGIN and COMMIT (or ROLLBACK)
                                    replies = await self._unit(conn, unit)
                                    if action.name in ("start", "review"):
                                        self._remember_session(action, unit.statements, replies)
                            finally:
                                inv.held_s += time.perf_counter() - taken
                finally:
                    if batch is not None:
                        batch.arrive()  # even after a failure: the batch must not wait for it
                if batch is not None:
                    # Like quizbot's caller: acknowledged once its batch has committed.
                    await batch.done.wait()
                    if batch.error is not None:
                        raise batch.error
                    inv.batch = batch.record
            except Exception as exc:
                stats.fail(exc)
            else:
                stats.add(time.perf_counter() - due, inv)
                self._ack(action.ack)

    def _remember_session(
        self, action: Action, statements: Statements, replies: list[list[Any]]
    ) -> None:
        """A start's session: the id the replayed INSERT returned stands for quizbot's."""
        for (sql, _params), rows in zip(statements, replies, strict=False):
            if "INSERT INTO QUIZ_SESSIONS" in sql.upper() and rows and action.session_id:
                self.sessions[action.session_id] = int(rows[0]["id"])

    async def _unit(self, conn: Any, unit: _Unit) -> list[list[Any]]:
        """Send statements as quizbot did: alone in autocommit, or in a transaction
        (begun alike) that commits or, when quizbot rolled it back, rolls back."""
        statements = unit.statements
        if unit.committed is None:
            return [await conn.fetch(sql, *self._params(params)) for sql, params in statements]
        if unit.committed:
            async with _transaction(conn, generic_plans=unit.generic_plans):
                return [await conn.fetch(sql, *self._params(params)) for sql, params in statements]
        # quizbot rolled this one back (a retried batch): same statements, same end.
        try:
            async with _transaction(conn, generic_plans=unit.generic_plans):
                for sql, params in statements:
                    try:
                        await conn.fetch(sql, *self._params(params))
                    except asyncpg.PostgresError:
                        break  # it failed in quizbot too; the transaction is aborted
                raise _RolledBack
        except _RolledBack:
            pass
        return []

    async def _flush(self, batch: _PendingBatch) -> None:
        record = batch.record
        record.began = time.perf_counter()
        try:
            units = _units(batch.trace.statements)
            async with self.writer_pool.acquire() as conn:
                taken = time.perf_counter()
                record.pool_wait_s = taken - record.began
                try:
                    for unit in units:
                        if unit.committed is not None:
                            record.tx += 2  # BEGIN and COMMIT (or ROLLBACK)
                        record.statements += len(unit.statements)
                        await self._unit(conn, unit)
                finally:
                    record.held_s = time.perf_counter() - taken
        except Exception as exc:
            record.failed = True
            batch.error = exc
        finally:
            record.seconds = time.perf_counter() - record.began
            batch.done.set()

    async def _committer(
        self, ready: asyncio.Queue[_PendingBatch], pending: list[_PendingBatch], in_flight: int
    ) -> None:
        """Up to `in_flight` flushes at a time, each batch once, as it gets ready.

        Batches are taken as they become ready, not strictly in quizbot's order: one
        answer arriving late in the replay must not hold up every later batch. Their
        effects on the totals commute, and a player's next answer comes only after
        the batch of their previous one committed, as in quizbot. Answer batches and
        message batches (`BatchTrace.kind`) have a committer each, as in quizbot.
        """
        slots = asyncio.Semaphore(in_flight)
        flushes: set[asyncio.Task[None]] = set()

        async def flush(batch: _PendingBatch) -> None:
            try:
                await self._flush(batch)
            finally:
                slots.release()

        left = len(pending)
        try:
            while left:
                try:
                    async with asyncio.timeout(BATCH_ARRIVAL_TIMEOUT_S):
                        batch = await ready.get()
                except TimeoutError:
                    # Answers the replay never delivered: flush what waits, counted.
                    for waiting in pending:
                        if not waiting.queued:
                            self.batches_forced += 1
                            waiting.enqueue()
                    continue
                await slots.acquire()
                task = asyncio.create_task(flush(batch))
                flushes.add(task)
                task.add_done_callback(flushes.discard)
                left -= 1
            await asyncio.gather(*flushes)
        finally:
            for task in flushes:
                task.cancel()
            await asyncio.gather(*flushes, return_exceptions=True)

    async def _group(self, steps: list[list[Action]], recorder: Recorder) -> None:
        for step in steps:
            await asyncio.gather(*(self._run(a, recorder) for a in step))

    async def replay(self, trace: StageTrace, recorder: Recorder) -> float:
        """Replay one stage; returns its wall time (see `batches` for its batches)."""
        began = self._began = time.perf_counter()
        ready: dict[str, asyncio.Queue[_PendingBatch]] = {}
        self._pending = []
        for b in trace.batches:
            queue = ready.setdefault(b.kind, asyncio.Queue())
            # Messages are written at once when the writer is idle (no window).
            window = trace.batch_window_s if b.kind == "answers" else 0.0
            self._pending.append(_PendingBatch(b, queue, window))
        committers = [
            asyncio.create_task(
                self._committer(
                    queue,
                    [p for p in self._pending if p.trace.kind == kind],
                    MESSAGE_FLUSHES if kind == "messages" else 1,
                )
            )
            for kind, queue in ready.items()
        ]
        try:
            await asyncio.gather(*(self._group(g, recorder) for g in trace.groups))
            await asyncio.gather(*committers)
        finally:
            for committer in committers:
                if not committer.done():
                    committer.cancel()
            await asyncio.gather(*committers, return_exceptions=True)
        return time.perf_counter() - began

    @property
    def batches(self) -> list[BatchRecord]:
        """The batches of the last replayed stage."""
        return [b.record for b in self._pending]
