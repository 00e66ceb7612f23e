"""Staying up when the database does not: error classification, a circuit breaker
around every unit of work, and a retry for transient transaction failures.

The breaker (DESIGN §5, the plan's "circuit breakers") counts consecutive
connection failures and pool timeouts. After `failure_threshold` of them it opens:
units of work fail at once with `DatabaseUnavailableError` instead of each waiting
for a connect or pool timeout, which would pile up interactions past Discord's
3-second limit. After the cool-down one probe is let through (half-open); its
success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from quizbot.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLSTATEs that mean "no usable connection": classes 08 (connection exception) and 28
# (login refused), admin/crash shutdown, cannot connect now, too many connections, no
# such database. A refused login is no answer either: a probe that met one must not
# close the breaker (a wrong password after a failover leaves every unit failing).
_CONNECTION_SQLSTATES = ("57P01", "57P02", "57P03", "53300", "3D000")
# A transaction that failed as a whole and left nothing behind: safe to run again.
_RETRYABLE_SQLSTATES = ("40P01", "40001")  # deadlock, serialization failure


def _sqlstate(error: BaseException) -> str | None:
    for candidate in (error, getattr(error, "orig", None), error.__cause__):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def is_connection_failure(error: BaseException) -> bool:
    """Whether `error` means the database could not be reached or no connection was free."""
    if isinstance(error, DatabaseUnavailableError | sa_exc.TimeoutError):
        return True  # sqlalchemy.exc.TimeoutError: the pool had no connection in time
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    state = _sqlstate(error)
    if state is not None and (state[:2] in ("08", "28") or state in _CONNECTION_SQLSTATES):
        return True
    root = getattr(error, "orig", None) or error
    # Connect errors (refused, unreachable, DNS, connect timeout) reach us as OSError
    # or TimeoutError, and a dropped connection as asyncpg's ConnectionDoesNotExistError.
    if isinstance(root, OSError | TimeoutError | asyncio.TimeoutError):
        return True
    return type(root).__name__ in {"ConnectionDoesNotExistError", "InterfaceError"} and (
        "closed" in str(root) or "connection" in str(root).lower()
    )


def is_stale_statement(error: BaseException) -> bool:
    """A cached prepared statement outlived a schema change (another process migrated).

    SQLAlchemy's asyncpg dialect clears its statement and type caches when it sees
    this, but cannot retry: the transaction is aborted. Running the unit of work
    again succeeds.
    """
    names = {type(e).__name__ for e in (error, getattr(error, "orig", None), error.__cause__)}
    if "InvalidCachedStatementError" in names:
        return True
    return "cache lookup failed for type" in str(error)


def is_retryable(error: BaseException) -> bool:
    """Deadlock, serialization failure or stale cached statement: nothing was committed."""
    return _sqlstate(error) in _RETRYABLE_SQLSTATES or is_stale_statement(error)


async def retry_transient(unit: Callable[[], Awaitable[T]], *, attempts: int = 3) -> T:
    """Run a unit of work, again when it failed as a whole for a transient reason.

    Only failures that roll the whole transaction back are retried (see
    `is_retryable`), so a retry never applies anything twice.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await unit()
        except sa_exc.DBAPIError as error:
            if attempt == attempts or not is_retryable(error):
                raise
            log.info("retrying a unit of work after %s", type(error.orig).__name__)
    raise AssertionError("unreachable")  # pragma: no cover


class BreakerState(enum.StrEnum):
    """Where the breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Fails fast after consecutive connection failures; one probe after the cool-down."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        self.rejected = 0  # calls refused while open
        self.opened = 0  # times it opened

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its cool-down reports half-open)."""
        if self._state is BreakerState.OPEN and self._remaining() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Connection failures since the last success."""
        return self._failures

    def _remaining(self) -> float:
        return self.cooldown - (self._clock() - self._opened_at)

    def before(self) -> None:
        """Call before using the database.

        Raises:
            DatabaseUnavailableError: the breaker is open (or a probe is already out).
        """
        if self._state is BreakerState.CLOSED:
            return
        now = self._clock()
        if self._state is BreakerState.OPEN:
            remaining = self._remaining()
            if remaining > 0:
                self.rejected += 1
                raise DatabaseUnavailableError(retry_after=remaining)
            self._state = BreakerState.HALF_OPEN
            self._probe_started = now
            log.info("database circuit breaker half-open: probing")
            return
        # Half-open: one probe at a time; a probe that never reports back (a
        # cancelled task) stops blocking others after another cool-down.
        if self._probe_started is not None and now - self._probe_started < self.cooldown:
            self.rejected += 1
            raise DatabaseUnavailableError(retry_after=self.cooldown)
        self._probe_started = now

    def success(self) -> None:
        """The database answered."""
        if self._state is not BreakerState.CLOSED:
            log.warning("database reachable again: circuit breaker closed")
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._probe_started = None

    def failure(self) -> None:
        """A connection failure or pool timeout happened."""
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._probe_started = None
            self.opened += 1
            log.error(
                "database unreachable after %d consecutive failures: failing fast for %.1f s",
                self._failures,
                self.cooldown,
            )


def settle(breaker: CircuitBreaker | None, error: BaseException | None) -> None:
    """Report a guarded unit of work's outcome to the breaker.

    Connection failures count against the database and come out as
    `DatabaseUnavailableError`, a message fit for a user, with the driver's error as its
    cause; anything else (or no error) proves the database answered.

    Raises:
        DatabaseUnavailableError: `error` was a connection failure or a pool timeout.
    """
    if breaker is None or isinstance(error, asyncio.CancelledError):
        return
    if error is not None and is_connection_failure(error):
        if isinstance(error, DatabaseUnavailableError):
            return  # already counted where it was raised
        breaker.failure()
        if isinstance(error, sa_exc.TimeoutError):
            raise DatabaseUnavailableError(
                "the database is busy right now, try again in a few seconds"
            ) from error
        raise DatabaseUnavailableError() from error
    breaker.success()


async def settle_after(
    close: Awaitable[object], breaker: CircuitBreaker | None, error: BaseException | None
) -> None:
    """Close a guarded unit of work, then `settle` its outcome: `error`, or the close's
    own failure (a connection lost while rolling back or returning it to the pool).

    The close's failure is reported too: a half-open breaker's probe that went
    unreported would keep every other caller failing fast for another cool-down.
    """
    try:
        await close
    except BaseException as close_error:
        # The unit's own connection failure wins over what closing then ran into (a
        # rollback after a timeout may fail with "another operation is in progress").
        lost = error is not None and is_connection_failure(error)
        settle(breaker, error if lost else close_error)
        raise
    settle(breaker, error)


class GuardedSession(AsyncSession):
    """An AsyncSession whose `async with` block is one guarded unit of work.

    Entering checks the breaker (and fails fast when it is open); leaving reports
    the outcome (see `settle`).
    """

    def __init__(self, *args: Any, breaker: CircuitBreaker | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.breaker = breaker

    async def __aenter__(self) -> GuardedSession:
        if self.breaker is not None:
            self.breaker.before()
        await super().__aenter__()
        return self

    async def __aexit__(
        self,
        type_: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await settle_after(super().__aexit__(type_, value, traceback), self.breaker, value)


class GuardedConnection:
    """A Core connection whose `async with` block is one guarded unit of work.

    For units of work of one statement that returns rows, not mapped objects: an ORM
    session costs about a third more CPU per statement than the connection under it
    (`bench/layers.py`), and the bot runs thousands of these a second. The breaker is
    checked and told the outcome as with `GuardedSession`. The connection comes from an
    engine in autocommit mode, so each statement commits on its own.
    """

    __slots__ = ("_breaker", "_connection")

    def __init__(self, engine: AsyncEngine, breaker: CircuitBreaker | None) -> None:
        self._connection = engine.connect()
        self._breaker = breaker

    async def __aenter__(self) -> AsyncConnection:
        if self._breaker is not None:
            self._breaker.before()
        try:
            return await self._connection.start()
        except BaseException as error:
            settle(self._breaker, error)  # raises for a connection failure
            raise

    async def __aexit__(
        self,
        type_: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await settle_after(
            self._connection.__aexit__(type_, value, traceback), self._breaker, value
        )


class GuardedConnections:
    """A factory of `GuardedConnection`s: `async with connections() as conn:`."""

    def __init__(self, engine: AsyncEngine, breaker: CircuitBreaker | None = None) -> None:
        self.engine = engine
        self.breaker = breaker

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self.engine, self.breaker)
