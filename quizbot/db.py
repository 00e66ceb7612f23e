"""The engine and session factory: one engine per process, one session per unit of work."""

from __future__ import annotations

import random
import time
import uuid
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from quizbot.config import Settings
from quizbot.embedded_pg import start_embedded_postgres
from quizbot.pool_monitor import MonitoredPool
from quizbot.resilience import CircuitBreaker, GuardedSession


def database_url(settings: Settings) -> str:
    """DATABASE_URL when set; otherwise start the embedded PostgreSQL and return its URL.

    Blocking when it starts the embedded server.
    """
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings)


def statements_stay_prepared(settings: Settings) -> bool:
    """Whether a connection keeps the statements it prepared: not behind PgBouncer
    (`DB_PGBOUNCER`), where a connection is no server process of its own, nor without
    the statement caches (`DB_STATEMENT_CACHE_SIZE=0`), which prepare every statement
    anew (unnamed) at each run."""
    return settings.db_statement_cache_size > 0 and not settings.db_pgbouncer


def answer_writer_generic_plans(settings: Settings) -> bool:
    """Whether the answer writer's connections force generic plans: ANSWER_GENERIC_PLANS,
    where statements stay prepared (elsewhere every run is planned anyway)."""
    return settings.answer_generic_plans and statements_stay_prepared(settings)


def finish_generic_plans(settings: Settings) -> bool:
    """Whether a quiz's end uses generic plans: FINISH_GENERIC_PLANS, where statements
    stay prepared."""
    return settings.finish_generic_plans and statements_stay_prepared(settings)


def connect_args(settings: Settings, *, generic_plans: bool = False) -> dict[str, Any]:
    """asyncpg connection arguments: application name, the prepared-statement caches and,
    with `generic_plans`, one plan per prepared statement.

    Two caches are involved. SQLAlchemy's asyncpg adapter prepares every statement
    itself (`connection.prepare()`, which bypasses asyncpg's cache) and keeps the
    prepared statements in its own per-connection LRU, `prepared_statement_cache_size`:
    that is the cache that saves a Parse/Describe round trip on every execute through
    SQLAlchemy. asyncpg's `statement_cache_size` serves what asyncpg runs on its own:
    the hot units of work on the driver (`quizbot.driver`), `executemany`, type
    introspection. Both are sized by DB_STATEMENT_CACHE_SIZE.
    After DDL from another process a cached statement may be stale: the adapter
    clears both caches when PostgreSQL says so, and `resilience.retry_transient`
    runs the aborted unit of work again.
    """
    args: dict[str, Any] = {
        "server_settings": {
            "application_name": settings.db_application_name,
            # The bot's statements are short OLTP reads and writes. With JIT on, one whose
            # estimate passes jit_above_cost (a rank count at a million members) spends
            # tens of milliseconds compiling before it runs.
            "jit": "off",
        },
        # asyncpg's own cache of prepared statements, per connection.
        "statement_cache_size": settings.db_statement_cache_size,
        # SQLAlchemy's adapter keeps a second cache of prepared statements.
        "prepared_statement_cache_size": settings.db_statement_cache_size,
    }
    if generic_plans:
        # PostgreSQL plans a prepared statement's first five runs with their values
        # (custom plans), then keeps using the generic plan only while its estimated cost
        # is no higher than the custom plans' average. The answer writer's statements
        # take their rows as arrays: a custom plan sees the arrays' real lengths (one to a
        # few dozen rows), the generic plan guesses ten per array and looks dearer, so the
        # server planned the batch's statements again at almost every batch: its two
        # statements had 2,822 and 2,683 custom plans against 217 and 356 generic ones on
        # the writer's connections after a benchmark run at 10-300 players
        # (pg_prepared_statements, 2026-12-07); so had the question messages' update on
        # the main pool (2,981 custom, none generic), which the writer now runs too.
        # Their generic plans look rows up by index as the custom ones do
        # (tests/integration/test_generic_plans.py), and forcing them
        # took a batch's flush from 4.9-5.5 to 3.4-4.2 ms at the benchmark's low loads
        # and from 7.7-11.9 to 4.6-8.9 ms at 1,000 players (docs/performance-history.md). A
        # statement prepared anew at every run (`statements_stay_prepared` false) is
        # planned at every run anyway: there a generic plan would save nothing.
        args["server_settings"]["plan_cache_mode"] = "force_generic_plan"
    if settings.db_command_timeout:
        args["command_timeout"] = settings.db_command_timeout
    if settings.db_pgbouncer:
        # PgBouncer in transaction mode may run each transaction on another server
        # connection, where a named prepared statement does not exist: no caches,
        # and unique names so two clients never collide on "__asyncpg_stmt_1__".
        args["statement_cache_size"] = 0
        args["prepared_statement_cache_size"] = 0
        args["prepared_statement_name_func"] = lambda: f"__asyncpg_{uuid.uuid4()}__"
    return args


def create_engine(
    settings: Settings,
    url: str | None = None,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    autocommit: bool = False,
    generic_plans: bool = False,
) -> AsyncEngine:
    """Create an engine with the configured pool.

    Args:
        settings: pool sizes, timeouts and statement cache come from here.
        url: the database URL; default `database_url(settings)`.
        pool_size: instead of DB_POOL_SIZE (the answer writer's own engine).
        max_overflow: instead of DB_MAX_OVERFLOW.
        autocommit: the pool's connections run in autocommit mode, where each
            statement commits on its own. The bot's units of work are mostly one
            statement each; with an isolation level given per use instead
            (`execution_options`), SQLAlchemy switches every checked-out connection to
            it and back again at checkin, about a fifth of the CPU of a one-row read.
            Units of work that need a transaction use `in_transactions(engine)`.
        generic_plans: the server plans each prepared statement once per connection
            (`connect_args`): for a pool that runs a few known statements whose generic
            plans were checked (the answer writer's: answer batches, question messages).

    Returns:
        An AsyncEngine over asyncpg.
    """
    extra: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    engine = create_async_engine(
        url or database_url(settings),
        pool_size=settings.db_pool_size if pool_size is None else pool_size,
        max_overflow=settings.db_max_overflow if max_overflow is None else max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # Recycling is ours (`StaggeredRecycle`), spread over each connection's life.
        pool_recycle=-1,
        pool_pre_ping=True,
        # Last in, first out by default (DB_POOL_LIFO): the connections a load needs stay
        # warm. Before the connections were primed at start (`App.open_pools`), the
        # spare ones met by a burst were cold and LIFO raised answer p99 at the
        # benchmark's 1,000-player step from 44-66 ms to 133-204 ms.
        pool_use_lifo=settings.db_pool_lifo,
        echo=settings.db_echo,
        connect_args=connect_args(settings, generic_plans=generic_plans),
        # The asyncio queue pool, with waits and timeouts counted (quizbot.pool_monitor).
        poolclass=MonitoredPool,
        **extra,
    )
    dialect = engine.sync_engine.dialect
    ping: Callable[[Any], bool] = dialect.do_ping
    if not settings.db_pgbouncer:
        # SQLAlchemy's asyncpg adapter wraps its ping in BEGIN ... ROLLBACK (for PgBouncer's
        # transaction mode): three round trips at every checkout. A bare ";" is one.
        ping = _ping_outside_a_transaction
    if settings.db_pool_recycle > 0:
        recycle = StaggeredRecycle(settings.db_pool_recycle)
        event.listen(engine.sync_engine, "connect", recycle.connected)
        event.listen(engine.sync_engine, "checkout", recycle.checked_out)
    if settings.db_ping_after_idle_s > 0:
        idle_aware = IdleAwarePing(ping, settings.db_ping_after_idle_s)
        event.listen(engine.sync_engine, "checkin", idle_aware.checked_in)
        ping = idle_aware
    dialect.do_ping = ping  # type: ignore[method-assign, assignment]
    return engine


# Set by the pool refresh (`App.refresh_pools`) while it checks idle connections out:
# those due within this many seconds are replaced then, in the background, rather than
# at a command's checkout.
RECYCLE_AHEAD_S: ContextVar[float] = ContextVar("quizbot_recycle_ahead_s", default=0.0)


class StaggeredRecycle:
    """Connections replaced after DB_POOL_RECYCLE seconds, each at its own moment.

    SQLAlchemy's `pool_recycle` replaces a connection at the first checkout after a
    fixed age. The bot opens its whole pool at start (`App.open_pools`), so every
    connection would reach that age together and, under load, all of them would be
    replaced within a second: the burst of new server processes the early opening is
    there to avoid. Here each connection gets a life drawn between three quarters and
    all of DB_POOL_RECYCLE, and is refused at checkout after it (`DisconnectionError`,
    SQLAlchemy's documented way for a checkout listener to ask for a new connection).
    """

    # A life is drawn from [RECYCLE_SPREAD * recycle_s, recycle_s].
    RECYCLE_SPREAD = 0.75
    # Where a connection's due time is kept (the pool record's `info`, cleared when the
    # connection is replaced).
    DUE = "quizbot_due"

    def __init__(self, recycle_s: float, rng: random.Random | None = None) -> None:
        self.recycle_s = recycle_s
        self._rng = rng or random.Random()

    def connected(self, _dbapi_connection: Any, record: Any) -> None:
        """Pool `connect` event: when this connection is due."""
        life = self._rng.uniform(self.RECYCLE_SPREAD * self.recycle_s, self.recycle_s)
        record.info[self.DUE] = time.monotonic() + life

    def checked_out(self, _dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        """Pool `checkout` event: a connection past its life (or due within
        `RECYCLE_AHEAD_S`, for the pool refresh) is replaced."""
        due = record.info.get(self.DUE)
        if due is not None and time.monotonic() + RECYCLE_AHEAD_S.get() >= due:
            raise exc.DisconnectionError("connection recycled (DB_POOL_RECYCLE)")


class IdleAwarePing:
    """The pool's pre-ping, skipped for a connection returned less than `idle_s` ago.

    A connection that just ran a unit of work has proved alive; pinging it again costs a
    round trip per unit of work, which under load is a wait in the event loop's queue
    too. One idle for longer (the server may have restarted or a firewall may have
    dropped it meanwhile) is pinged and replaced when dead, as before. If the server
    goes away within the window, the next unit of work fails as one in flight would;
    SQLAlchemy then invalidates every pooled connection, so the ones after it reconnect.
    """

    def __init__(self, ping: Callable[[Any], bool], idle_s: float) -> None:
        self.ping = ping  # the round trip itself (the benchmark counts its calls)
        self.idle_s = idle_s
        # Keyed by the asyncpg connection: a reconnect has no entry and is pinged.
        self._returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def checked_in(self, dbapi_connection: Any, _record: Any) -> None:
        """Pool `checkin` event: remember when the connection came back."""
        if dbapi_connection is not None:
            self._returned[dbapi_connection.driver_connection] = time.monotonic()

    def __call__(self, dbapi_connection: Any) -> bool:
        returned = self._returned.get(dbapi_connection.driver_connection)
        if returned is not None and time.monotonic() - returned < self.idle_s:
            return True
        return self.ping(dbapi_connection)


def _ping_outside_a_transaction(dbapi_connection: Any) -> bool:
    """The pool's pre-ping in one round trip: the adapter's own ping, in autocommit mode.

    Errors go through the adapter as before, so a dead connection is still detected and
    replaced by the pool.
    """
    was_autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.ping()
    finally:
        dbapi_connection.autocommit = was_autocommit
    return True


def in_transactions(engine: AsyncEngine) -> AsyncEngine:
    """A view of an autocommit engine (`create_engine(autocommit=True)`) with transactions.

    It shares the engine's pool and events. A connection checked out through it is
    switched to READ COMMITTED (PostgreSQL's default), so `session.begin()` sends BEGIN
    and COMMIT, and is switched back to autocommit when it returns to the pool.
    """
    return engine.execution_options(isolation_level="READ COMMITTED")


def create_breaker(settings: Settings) -> CircuitBreaker:
    """The circuit breaker the settings ask for (DB_BREAKER_FAILURES, DB_BREAKER_COOLDOWN)."""
    return CircuitBreaker(
        failure_threshold=settings.db_breaker_failures, cooldown=settings.db_breaker_cooldown
    )


def create_sessionmaker(
    engine: AsyncEngine, breaker: CircuitBreaker | None = None
) -> async_sessionmaker[AsyncSession]:
    """The session factory every service receives; objects stay usable after commit.

    Each `async with sessionmaker() as session:` block is a unit of work guarded by
    `breaker` (see `quizbot.resilience.GuardedSession`).
    """
    return async_sessionmaker(
        engine, expire_on_commit=False, class_=GuardedSession, breaker=breaker
    )


def create_read_sessionmaker(
    engine: AsyncEngine, breaker: CircuitBreaker | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions for units of work of one statement each, with no transaction around them.

    In autocommit mode asyncpg sends no BEGIN and no ROLLBACK/COMMIT: a one-statement
    read is one round trip instead of three. Services use it for reads, and for writes
    that are one atomic statement each (moving a quiz to its next question); a unit of
    work whose writes must commit together uses `create_sessionmaker`'s sessions and
    `session.begin()`.

    This is for an engine whose connections run in transactions: each checkout is
    switched to autocommit and back. Over an engine created with `autocommit=True`
    (the bot's), `create_sessionmaker(engine)` gives the same sessions without that.
    """
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        class_=GuardedSession,
        breaker=breaker,
    )
