"""Pool metrics and alerts, the circuit breaker, and surviving stale prepared statements,
with real engines (a pool of one, an unreachable port, DDL from another connection)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace

import asyncpg
import pytest
from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool.base import _ConnectionFairy

from quizbot.app import WRITER_SPARE
from quizbot.cache import QuizCache
from quizbot.config import Settings
from quizbot.db import (
    RECYCLE_AHEAD_S,
    StaggeredRecycle,
    connect_args,
    create_engine,
    create_sessionmaker,
)
from quizbot.driver import DriverConnections
from quizbot.errors import DatabaseUnavailableError
from quizbot.models import Difficulty, QuestionKind
from quizbot.pool_monitor import MonitoredPool, PoolMonitor
from quizbot.repositories import ExecutorFactory
from quizbot.resilience import (
    BreakerState,
    CircuitBreaker,
    GuardedConnections,
    is_connection_failure,
    is_stale_statement,
    retry_transient,
)
from quizbot.services.quiz import MESSAGE_FLUSHES, QuestionData, QuizService

UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"


class FakeClock:
    """Cool-downs pass when the test says so, not by sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def tiny(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A pool of exactly one connection that gives up waiting after 0.2 s."""
    settings = Settings(db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.2)
    engine = create_engine(settings, database_url)
    yield engine
    await engine.dispose()


# -- pool metrics and alerts ---------------------------------------------------


async def test_waits_and_timeouts_are_counted_and_alerted(tiny: AsyncEngine) -> None:
    assert isinstance(tiny.sync_engine.pool, MonitoredPool)
    monitor = PoolMonitor(tiny, alert_utilisation=0.9, alert_wait_ms=0)
    async with tiny.connect() as held:
        await held.execute(text("SELECT 1"))
        # Nothing idle, no overflow: the second checkout waits, then times out.
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with create_sessionmaker(tiny, CircuitBreaker())() as s:
                await s.execute(text("SELECT 1"))
        assert "busy" in str(caught.value)
        status = monitor.status()
        assert (status.checked_out, status.utilisation) == (1, 1.0)

        # A checkout that waits and gets the connection once it is returned.
        async def second() -> int:
            async with tiny.connect() as conn:
                return int((await conn.execute(text("SELECT 2"))).scalar_one())

        waiting = asyncio.create_task(second())
        for _ in range(1000):  # until the second checkout is blocked on the pool
            if monitor.metrics.waiting:
                break
            await asyncio.sleep(0.005)
    assert await waiting == 2
    m = monitor.metrics
    assert (m.waits, m.timeouts) == (2, 1)
    assert m.checkouts >= 2 and m.connects == 1 and m.peak_checked_out == 1
    alerts = monitor.check()
    assert any("utilisation 1/1" in a for a in alerts)
    assert any("waited" in a for a in alerts)
    assert any("timed out" in a for a in alerts)
    assert monitor.check() == []  # a new window: the pool is idle now
    assert "1 timeouts" in monitor.status().describe()
    monitor.remove()


async def _first_warning(monitor: PoolMonitor, caplog: pytest.LogCaptureFixture) -> str:
    """Run the periodic check until it logs; its first warning."""
    task = asyncio.create_task(monitor.run(0.01))
    try:
        for _ in range(500):
            if caplog.records:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    return caplog.records[0].getMessage()


async def test_the_periodic_check_logs_a_warning(
    tiny: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = PoolMonitor(tiny, alert_utilisation=1.0)
    caplog.set_level(logging.WARNING, logger="quizbot.pool_monitor")
    async with tiny.connect() as held:
        await held.execute(text("SELECT 1"))
        message = await _first_warning(monitor, caplog)
    assert "pool utilisation 1/1" in message
    assert message.startswith("database pool: ")
    monitor.remove()


async def test_a_pool_used_in_full_by_design_alerts_on_waits_not_on_utilisation(
    tiny: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # The answer writer's pool: every batch in flight holds one of its connections, so
    # a full pool is its normal state under load; a wait for one is not.
    monitor = PoolMonitor(tiny, name="answer writer pool", alert_utilisation=None, alert_wait_ms=0)
    caplog.set_level(logging.WARNING, logger="quizbot.pool_monitor")
    async with tiny.connect() as held:
        await held.execute(text("SELECT 1"))
        assert monitor.check() == []  # 1/1 checked out, nobody waiting: healthy

        async def second() -> None:
            async with tiny.connect() as conn:
                await conn.execute(text("SELECT 1"))

        waiter = asyncio.create_task(second())
        await asyncio.sleep(0.05)
    await waiter
    message = await _first_warning(monitor, caplog)
    assert message.startswith("answer writer pool: 1 checkouts waited")
    assert "utilisation" not in message.split(" — ")[0]
    monitor.remove()


def test_recycling_spreads_the_connections_lives() -> None:
    """Connections opened together (the bot opens its pool at start) are due between
    three quarters and all of DB_POOL_RECYCLE, each at its own moment."""
    recycle = StaggeredRecycle(1800, rng=random.Random(5))
    records = [SimpleNamespace(info={}) for _ in range(40)]
    began = time.monotonic()
    for record in records:
        recycle.connected(None, record)
    lives = [r.info[StaggeredRecycle.DUE] - began for r in records]
    assert all(1350 <= life <= 1800.5 for life in lives)
    assert max(lives) - min(lives) > 300  # spread, not one moment for all


def test_the_pool_refresh_replaces_connections_due_soon() -> None:
    """Within RECYCLE_AHEAD_S (the pool refresh's checkouts) a connection due soon is
    refused, so that it is replaced then; a command's checkout waits for its due time."""
    recycle = StaggeredRecycle(1800)
    record = SimpleNamespace(info={StaggeredRecycle.DUE: time.monotonic() + 30})
    recycle.checked_out(None, record, None)  # a command's checkout: still within its life
    token = RECYCLE_AHEAD_S.set(60)
    try:
        with pytest.raises(exc.DisconnectionError):
            recycle.checked_out(None, record, None)
        record.info[StaggeredRecycle.DUE] = time.monotonic() + 120
        recycle.checked_out(None, record, None)  # not due before the refresh after next
    finally:
        RECYCLE_AHEAD_S.reset(token)


async def test_a_connection_past_its_life_is_replaced_at_checkout(database_url: str) -> None:
    settings = Settings(db_pool_size=1, db_max_overflow=0, db_pool_recycle=1)
    engine = create_engine(settings, database_url)
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with engine.connect() as conn:  # within its life: the same connection
            assert await conn.scalar(text("SELECT pg_backend_pid()")) == first
        await asyncio.sleep(1.05)  # every life is at most DB_POOL_RECYCLE
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) != first
    finally:
        await engine.dispose()


async def test_metrics_survive_engine_dispose(tiny: AsyncEngine) -> None:
    monitor = PoolMonitor(tiny)
    async with tiny.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await tiny.dispose()  # recreates the pool
    async with tiny.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert monitor.metrics is tiny.sync_engine.pool.metrics  # type: ignore[attr-defined]
    assert monitor.metrics.connects == 2
    monitor.remove()


# -- circuit breaker -------------------------------------------------------------


@pytest.fixture
async def unreachable() -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(db_pool_timeout=1), UNREACHABLE)
    yield engine
    await engine.dispose()


def _count_connects(engine: AsyncEngine) -> list[int]:
    attempts = [0]

    @event.listens_for(engine.sync_engine, "do_connect")
    def _attempt(*_: object) -> None:
        attempts[0] += 1

    return attempts


async def _select_one(units: ExecutorFactory) -> int:
    async with units() as s:
        return int((await s.execute(text("SELECT 1"))).scalar_one())


# Units of work come as ORM sessions or, on the hot one-statement paths, as Core
# connections: both are guarded the same way.
GUARDS: dict[str, Callable[[AsyncEngine, CircuitBreaker], ExecutorFactory]] = {
    "session": create_sessionmaker,
    "connection": GuardedConnections,
    "driver": DriverConnections,
}


@pytest.mark.parametrize("guard", GUARDS)
async def test_breaker_opens_fails_fast_probes_and_closes(
    unreachable: AsyncEngine, engine: AsyncEngine, guard: str
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown=5, clock=clock)
    down = GUARDS[guard](unreachable, breaker)
    up = GUARDS[guard](engine, breaker)  # the same database, once it is back
    attempts = _count_connects(unreachable)

    for n in range(3):
        with pytest.raises(DatabaseUnavailableError) as caught:
            await _select_one(down)
        assert isinstance(caught.value.__cause__, Exception)
        assert is_connection_failure(caught.value.__cause__)
        assert breaker.consecutive_failures == n + 1
    assert breaker.state is BreakerState.OPEN and attempts[0] == 3

    # Open: fail at once, no connection attempt, a message for users.
    with pytest.raises(DatabaseUnavailableError, match="unavailable, try again in 5 seconds"):
        await _select_one(down)
    assert attempts[0] == 3 and breaker.rejected == 1

    # After the cool-down one probe goes through; it fails: open again.
    clock.now += 5
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(DatabaseUnavailableError):
        await _select_one(down)
    assert attempts[0] == 4 and breaker.state is BreakerState.OPEN and breaker.opened == 2

    # Next cool-down: the probe succeeds and closes the breaker.
    clock.now += 5
    assert await _select_one(up) == 1
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 0


async def test_half_open_lets_one_probe_through_at_a_time() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=2, clock=clock)
    breaker.failure()
    clock.now += 2
    breaker.before()  # the probe
    with pytest.raises(DatabaseUnavailableError):
        breaker.before()  # others still fail fast while it is out
    breaker.success()
    breaker.before()
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("guard", GUARDS)
async def test_a_refused_login_counts_as_a_failure(database_url: str, guard: str) -> None:
    """The server answers, but with no usable connection: no probe may close on that."""
    missing = make_url(database_url).set(database="quizbot_no_such_database")
    engine = create_engine(Settings(), missing.render_as_string(hide_password=False))
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    try:
        for _ in range(2):
            with pytest.raises(DatabaseUnavailableError) as caught:
                await _select_one(GUARDS[guard](engine, breaker))
            assert "quizbot_no_such_database" in str(caught.value.__cause__)
        assert breaker.state is BreakerState.OPEN
    finally:
        await engine.dispose()


def _closing_fails(monkeypatch: pytest.MonkeyPatch, guard: str, error: Exception) -> None:
    """Closing a unit of `guard`'s kind closes it, then raises `error`."""
    if guard == "driver":  # the pooled connection itself is closed (returned)
        close_fairy = _ConnectionFairy.close

        def close_fairy_then_fail(self: _ConnectionFairy) -> None:
            close_fairy(self)
            raise error

        monkeypatch.setattr(_ConnectionFairy, "close", close_fairy_then_fail)
        return
    kind = {"session": AsyncSession, "connection": AsyncConnection}[guard]
    close = kind.close

    async def close_then_fail(self: AsyncSession | AsyncConnection) -> None:
        await close(self)  # type: ignore[arg-type]
        raise error

    monkeypatch.setattr(kind, "close", close_then_fail)


@pytest.mark.parametrize("guard", GUARDS)
async def test_a_connection_lost_while_closing_is_reported(
    engine: AsyncEngine, guard: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A half-open probe whose close fails reports that failure: were it left
    unreported, every other caller would fail fast for another cool-down."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5, clock=clock)
    breaker.failure()
    clock.now += 5
    _closing_fails(monkeypatch, guard, ConnectionResetError("connection lost while closing"))
    with pytest.raises(DatabaseUnavailableError) as caught:
        await _select_one(GUARDS[guard](engine, breaker))
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert breaker.state is BreakerState.OPEN and breaker.opened == 2
    monkeypatch.undo()
    clock.now += 5  # the next probe is let through, and closes it
    assert await _select_one(GUARDS[guard](engine, breaker)) == 1
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("guard", GUARDS)
async def test_a_lost_connection_counts_even_when_closing_then_fails_otherwise(
    engine: AsyncEngine, guard: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timeout in the unit, then the rollback refused ("another operation is in
    progress"): the connection failure is what the breaker hears of."""
    breaker = CircuitBreaker(failure_threshold=1, clock=FakeClock())
    _closing_fails(monkeypatch, guard, RuntimeError("another operation is in progress"))
    with pytest.raises(DatabaseUnavailableError) as caught:
        async with GUARDS[guard](engine, breaker)() as s:
            await s.execute(text("SELECT 1"))
            raise TimeoutError("the statement timed out")
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize("guard", GUARDS)
async def test_errors_that_are_not_about_connections_do_not_trip_it(
    engine: AsyncEngine, guard: str
) -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    sessions = GUARDS[guard](engine, breaker)
    for _ in range(3):
        with pytest.raises(Exception, match="division by zero"):
            async with sessions() as s:
                await s.execute(text("SELECT 1 / 0"))
    assert breaker.state is BreakerState.CLOSED


async def test_answers_fail_fast_for_every_caller_when_the_database_is_down(
    unreachable: AsyncEngine,
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=FakeClock())
    cache = QuizCache(QuizCache.memory_backend())
    quiz = QuizService(create_sessionmaker(unreachable, breaker), cache, answer_batch_max=5)
    question = QuestionData(
        id=1,
        topic="t",
        category="c",
        difficulty=Difficulty.EASY,
        kind=QuestionKind.TRUE_FALSE,
        prompt="?",
        choices=("True", "False"),
        answer="True",
        accepted=(),
        tolerance=None,
        explanation="",
    )
    await cache.backend.set("question:1", question)  # a running bot has it cached
    results = await asyncio.gather(
        *(
            quiz.answer(session_id=1, question_id=1, user_id=u, display_name="x", given="True")
            for u in range(5)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, DatabaseUnavailableError) for r in results), results
    assert breaker.state is BreakerState.OPEN
    assert quiz.answer_batcher is not None and quiz.answer_batcher.stats.batches == 1
    await quiz.close()


# -- prepared statements -----------------------------------------------------------


def test_pgbouncer_mode_turns_both_caches_off_with_unique_names() -> None:
    args = connect_args(Settings(db_pgbouncer=True, db_statement_cache_size=500))
    assert args["statement_cache_size"] == 0 and args["prepared_statement_cache_size"] == 0
    name = args["prepared_statement_name_func"]
    assert name() != name() and name().startswith("__asyncpg_")
    sized = connect_args(Settings(db_statement_cache_size=123))
    assert sized["statement_cache_size"] == sized["prepared_statement_cache_size"] == 123
    assert "prepared_statement_name_func" not in sized


@pytest.fixture
async def scratch_table(engine: AsyncEngine) -> AsyncIterator[str]:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE stale_check (id int PRIMARY KEY, v int)"))
        await conn.execute(text("INSERT INTO stale_check VALUES (1, 41)"))
    yield "stale_check"
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS stale_check"))


@pytest.mark.parametrize("pgbouncer", [False, True])
async def test_a_cached_statement_survives_a_migration_from_another_process(
    scratch_table: str, database_url: str, pgbouncer: bool
) -> None:
    settings = Settings(db_pool_size=1, db_max_overflow=0, db_pgbouncer=pgbouncer)
    app_engine = create_engine(settings, database_url)
    migrator = await _other_process(database_url)
    sessions = create_sessionmaker(app_engine, CircuitBreaker())
    query = text("SELECT * FROM stale_check WHERE id = 1")

    async def read() -> tuple[int, ...]:
        async with sessions() as s, s.begin():
            return tuple((await s.execute(query)).one())

    try:
        assert await read() == (1, 41)  # prepared and cached on the one pooled connection
        # Another process migrates: the cached statement's result type changes.
        await migrator.execute("ALTER TABLE stale_check ALTER COLUMN v TYPE bigint")
        await migrator.execute("ALTER TABLE stale_check ADD COLUMN w text DEFAULT 'new'")
        if not pgbouncer:
            with pytest.raises(Exception) as caught:
                await read()  # the transaction is aborted: nothing can retry inside it
            assert is_stale_statement(caught.value)
            await migrator.execute("ALTER TABLE stale_check DROP COLUMN w")
        # A unit of work run through retry_transient survives it.
        assert (await retry_transient(read))[:2] == (1, 41)
    finally:
        await migrator.close()
        await app_engine.dispose()


async def test_retry_transient_reruns_a_stale_unit_once(
    scratch_table: str, database_url: str
) -> None:
    app_engine = create_engine(Settings(db_pool_size=1, db_max_overflow=0), database_url)
    migrator = await _other_process(database_url)
    sessions = create_sessionmaker(app_engine)
    runs = [0]

    async def read() -> int:
        runs[0] += 1
        async with sessions() as s, s.begin():
            return int((await s.execute(text("SELECT v FROM stale_check"))).scalar_one())

    try:
        await read()
        await migrator.execute("ALTER TABLE stale_check ALTER COLUMN v TYPE bigint")
        runs[0] = 0
        assert await retry_transient(read) == 41
        assert runs[0] == 2  # failed once on the stale statement, then re-prepared
    finally:
        await migrator.close()
        await app_engine.dispose()


async def _other_process(database_url: str) -> asyncpg.Connection:
    """A bare connection, like a migration run from another process."""
    url = make_url(database_url)
    return await asyncpg.connect(
        user=url.username, host=url.host, port=url.port, database=url.database
    )


async def test_the_app_wires_flags_breaker_and_monitor(database_url: str) -> None:
    from quizbot.app import App

    settings = Settings(
        answer_group_commit=False,
        stats_single_statement=False,
        cache_enabled=False,
        db_breaker_failures=7,
        db_pool_monitor_interval=60,
    )
    app = App.create(settings, database_url)
    try:
        assert app.quiz.answer_batcher is None
        assert app.stats.stats_single_statement is False
        assert app.cache.enabled is False
        assert app.breaker.failure_threshold == 7
        assert isinstance(app.engine.sync_engine.pool, MonitoredPool)
        async with app.sessionmaker() as s:
            assert s.breaker is app.breaker  # type: ignore[attr-defined]
        await app.bootstrap(seed=False)
        assert app._monitor_task is not None and not app._monitor_task.done()
        assert app.pool_monitor.metrics.checkouts >= 1
        assert [m.name for m in app.pool_monitors] == ["database pool"]
    finally:
        await app.close()
    assert app._monitor_task is None
    assert app.answer_engine is None  # no batches, no writer connection
    # The question messages are then written from the engine's pool.
    assert app.quiz._message_statements is app.read_connections
    defaults = App.create(Settings(), database_url)
    try:
        assert defaults.quiz.answer_batcher is not None
        assert defaults.quiz.answer_batcher.window == Settings().answer_group_commit_ms / 1000
        # Batches are written on connections of their own (one per batch in flight),
        # outside the main pool.
        assert defaults.answer_engine is not None
        flushes = Settings().answer_flushes
        assert defaults.quiz.answer_batcher.in_flight == flushes == 2
        # One connection per answer batch and per question-message batch in flight, and
        # the pool refresh's spare.
        writers = flushes + MESSAGE_FLUSHES + WRITER_SPARE
        assert defaults.answer_engine.sync_engine.pool.size() == writers  # type: ignore[attr-defined]
        assert defaults.quiz._message_statements is defaults.answer_connections
        writer_pool = defaults.answer_engine.sync_engine.pool
        assert defaults.quiz._writer._sessions.kw["bind"].sync_engine.pool is writer_pool
        # Both pools are watched; the writer's alerts on waits only (it is full by design).
        assert [m.name for m in defaults.pool_monitors] == ["database pool", "answer writer pool"]
        assert defaults.pool_monitors[1].engine is defaults.answer_engine
        assert defaults.pool_monitors[1].alert_utilisation is None
    finally:
        await defaults.close()


async def test_reads_commit_each_statement_and_units_of_work_run_in_one_transaction(
    database_url: str,
) -> None:
    from quizbot.app import App

    # The pool's connections are in autocommit mode; the transactional sessions switch
    # theirs for the unit of work and back. Two statements in one transaction share a
    # transaction id; in autocommit each statement is a transaction of its own.
    app = App.create(Settings(db_pool_size=1, db_max_overflow=0), database_url)
    xact = text("SELECT pg_current_xact_id()::text")
    try:
        for _ in range(2):  # the same connection, back and forth between the modes
            async with app.read_sessionmaker() as s:
                assert await s.scalar(xact) != await s.scalar(xact)
            async with app.sessionmaker() as s, s.begin():
                assert await s.scalar(xact) == await s.scalar(xact)
    finally:
        await app.close()


async def test_a_stuck_statement_is_cancelled_and_reported_as_unavailable(
    database_url: str,
) -> None:
    engine = create_engine(Settings(db_command_timeout=0.2), database_url)
    breaker = CircuitBreaker(failure_threshold=1, clock=FakeClock())
    try:
        with pytest.raises(DatabaseUnavailableError):
            async with create_sessionmaker(engine, breaker)() as s:
                await s.execute(text("SELECT pg_sleep(5)"))
        assert breaker.state is BreakerState.OPEN
    finally:
        await engine.dispose()
