"""The hottest units of work, run on the driver itself.

A statement through a Core connection cost about 250 µs of CPU against 45 µs for the
same statement on a bare asyncpg connection (`bench/layers.py`, 2026-12-01): about
100 µs in the engine's `Connection` and SQLAlchemy's execution (an execution context,
a cursor adapter, result metadata, a greenlet switch per await), most of the rest in
`engine.connect()`. At 1,000 players the bot's loop is CPU-bound, and every
microsecond there is a wait for every coroutine behind it.

`DriverConnections` keeps what SQLAlchemy gives these units and drops the rest:

- the connection still comes from the engine's pool (`Engine.raw_connection`): the
  same size, timeouts, pre-ping, monitoring (`quizbot.pool_monitor`), events and
  asyncpg settings (statement cache, PgBouncer mode); the pool's synchronous checkout
  and return run on reused greenlets (`quizbot.greenlets`), not a new one per call;
- the statement is still a SQLAlchemy `text()` or Core construct, compiled by the
  engine's dialect, once per statement object, into the SQL SQLAlchemy would send
  (`$n` placeholders, bind casts), with its bind and result processors (enums, arrays);
- errors still come out as SQLAlchemy's exceptions (`IntegrityError`, `DBAPIError`
  with the SQLSTATE), so repositories, `retry_transient` and the circuit breaker treat
  them as before;
- but the statement runs as `asyncpg.Connection.fetch` on the pooled connection, and
  the rows are plain named tuples (attribute and index access, as SQLAlchemy's rows).

A unit of work runs in autocommit (`connections()`: each statement commits on its
own), or between `BEGIN` and `COMMIT` (`connections.transaction()`: `ROLLBACK` when
the block raises). Statements are compiled once per statement object, so the ones on
these paths are module constants (or memoised); a statement that SQLAlchemy would
expand at execution time (`IN` with a list) is refused. Not covered, because no
statement here needs them: an INSERT or UPDATE whose columns SQLAlchemy would take
from the parameters (give `.values()`), and result processing inside arrays of
numerics (asyncpg's element types are kept).
"""

from __future__ import annotations

import collections
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import ReturnsRows, TextualSelect

from quizbot import greenlets
from quizbot.resilience import CircuitBreaker, settle, settle_after

log = logging.getLogger(__name__)

# As SQLAlchemy begins a unit of work of `db.in_transactions(engine)`.
BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"
# The same, for a unit whose statements use their generic plans (`transaction`): one
# message, so no round trip more, and the setting ends with the transaction.
BEGIN_GENERIC_PLANS = f"{BEGIN}; SET LOCAL plan_cache_mode = force_generic_plan"
# What `DriverConnection.control` sends, which listeners are told of like statements.
TRANSACTION_CONTROL = frozenset({BEGIN, BEGIN_GENERIC_PLANS, "COMMIT", "ROLLBACK"})
# Who is told of every statement sent (the tests' and the benchmark's counters), per engine.
StatementListener = Callable[[str, Sequence[Any]], None]
_LISTENERS: weakref.WeakKeyDictionary[Engine, list[StatementListener]] = weakref.WeakKeyDictionary()


def listen(engine: AsyncEngine, listener: StatementListener) -> None:
    """Call `listener(sql, arguments)` before each statement a `DriverConnections` of
    `engine` sends (SQLAlchemy's `before_cursor_execute` does not see them)."""
    _LISTENERS.setdefault(engine.sync_engine, []).append(listener)


def remove(engine: AsyncEngine, listener: StatementListener) -> None:
    """Stop calling a listener given to `listen`."""
    listeners = _LISTENERS.get(engine.sync_engine, [])
    if listener in listeners:
        listeners.remove(listener)


# The pools whose connections are primed at start (`App.open_pools`): the engine's,
# and the answer writer's own.
PoolName = Literal["main", "answers"]
MAIN_POOL: PoolName = "main"
ANSWER_POOL: PoolName = "answers"
_AT_START: dict[PoolName, list[Executable]] = {MAIN_POOL: [], ANSWER_POOL: []}


def prime_at_start(*statements: Executable, pools: Sequence[PoolName] = (MAIN_POOL,)) -> None:
    """Name statements that hot units of work run on the driver over `pools`: the bot
    prepares them on each of their connections at start (`DriverConnections.prime`).

    Called once per module, after its statements, with its module constants and
    memoised statements.
    """
    for pool in pools:
        _AT_START[pool].extend(statements)


def statements_at_start(pool: PoolName) -> tuple[Executable, ...]:
    """The statements named for `pool` by `prime_at_start`, in the order named."""
    return tuple(_AT_START[pool])


# Set in a pooled connection's `info` once `DriverConnections.prime` went through its
# statements (the pool clears `info` when it replaces the connection).
PRIMED = "quizbot_primed"

# How long priming waits for a table's lock (only a migration's would block a plan). On
# the first such wait a connection's priming stops: a bot's start does not wait behind
# another process's schema change once per statement.
PRIME_TIMEOUT_MS = 200
# What priming sends to open the transaction its portals live in. The generic plan is
# forced there because a portal bound with NULLs would otherwise be planned with them:
# a condition on a parameter folds to false, a plan that costs nothing, and the server
# counts it among the first five custom plans whose average cost decides whether the
# generic plan is kept. That average came out low, so the server went on planning each
# run. /stats in a 3-minute benchmark run on 40 connections: 287 runs planned and 62 on
# the generic plan, against 198 and 108 after this change (2026-12-07).
PRIME_BEGIN = (
    f"BEGIN; SET LOCAL lock_timeout = {PRIME_TIMEOUT_MS}; "
    "SET LOCAL plan_cache_mode = force_generic_plan"
)


@dataclass(frozen=True)
class NotPrimed:
    """A statement `DriverConnections.prime` could not prepare, and why."""

    sql: str
    error: str


class DriverResult:
    """A statement's rows, with the accessors of SQLAlchemy's `Result` that the
    repositories use."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        """Every row."""
        return self._rows

    def first(self) -> Any:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any:
        """The only row, or None.

        Raises:
            MultipleResultsFound: more than one row.
        """
        if len(self._rows) > 1:
            raise sa_exc.MultipleResultsFound(
                "Multiple rows were found when one or none was required"
            )
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        """The only row.

        Raises:
            NoResultFound: no row.
            MultipleResultsFound: more than one row.
        """
        if not self._rows:
            raise sa_exc.NoResultFound("No row was found when one was required")
        return self.one_or_none()

    def scalar(self) -> Any:
        """The first row's first column, or None."""
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        """The only row's first column."""
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        """The only row's first column, or None without a row."""
        if not self._rows:
            return None
        return self.one_or_none()[0]

    def scalars(self) -> DriverResult:
        """The first column of every row."""
        return DriverResult([row[0] for row in self._rows])


@dataclass(slots=True)
class _Compiled:
    """A statement as the dialect compiles it, with what it takes to run it on asyncpg."""

    sql: str
    names: tuple[str, ...]  # the parameter behind each $n
    fixed: dict[str, BindParameter[Any]]  # bound in the statement (`bindparams(x=1)`)
    bind: tuple[Callable[[Any], Any] | None, ...]  # per $n
    # The columns typed by the statement (`text().columns(...)`, a Core select): name
    # and SQLAlchemy type, in select order. Matched to the result as SQLAlchemy does.
    typed: tuple[tuple[str, Any], ...]
    dialect: Dialect
    textual: bool  # `text().columns()`
    by_position: bool  # its columns were given positionally (or a Core select's)
    row: type[tuple[Any, ...]] | None = None  # built from the first result's columns
    results: tuple[tuple[int, Callable[[Any], Any]], ...] = ()

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values: list[Any] = []
        for name, process in zip(self.names, self.bind, strict=True):
            if name in params:
                value = params[name]
            elif name in self.fixed:
                value = self.fixed[name].effective_value  # a callable's, called now
            else:
                raise sa_exc.ArgumentError(f"a value is required for bind parameter {name!r}")
            values.append(value if process is None else process(value))
        return values

    def rows(self, records: list[asyncpg.Record]) -> list[Any]:
        if not records:
            return []
        if self.row is None:
            self._describe(list(records[0].keys()))
        assert self.row is not None
        make = self.row._make  # type: ignore[attr-defined]
        if not self.results:
            return [make(record) for record in records]
        rows = []
        for record in records:
            values = list(record)
            for index, process in self.results:
                if values[index] is not None:
                    values[index] = process(values[index])
            rows.append(make(values))
        return rows

    def _describe(self, keys: list[str]) -> None:
        # As SQLAlchemy matches typed columns to a result: the columns given to
        # `text().columns()` positionally by position (keyword ones by name), with the
        # result's names; a Core select's by position when the counts agree, with its
        # own names; anything else by name.
        names = keys
        by_name = dict(self.typed)
        types: list[Any] = [by_name.get(key) for key in keys]
        if self.typed and self.by_position and len(self.typed) == len(keys):
            types = [type_ for _name, type_ in self.typed]
            if not self.textual:
                names = [name for name, _type in self.typed]
        results = []
        for index, type_ in enumerate(types):
            process = None if type_ is None else _result_processor(type_, self.dialect)
            if process is not None:
                results.append((index, process))
        self.results = tuple(results)
        self.row = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]


def _result_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    if hasattr(type_, "asdecimal"):  # Numeric, Float, Double (whose base differs by version)
        # SQLAlchemy picks a numeric column's conversion by the column's type in the
        # result, which asyncpg's rows do not carry: convert by the value's type instead.
        # As SQLAlchemy: a float becomes a Decimal for `asdecimal`, and anything else
        # becomes a float without it.
        if type_.asdecimal:
            return lambda value: Decimal(repr(value)) if isinstance(value, float) else value
        return lambda value: value if isinstance(value, float) else float(value)
    process: Callable[[Any], Any] | None = type_.result_processor(dialect, None)
    return process


def compile_for_driver(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    """Compile `statement` to the SQL SQLAlchemy would send and its processors.

    Raises:
        TypeError: the statement has parameters expanded at execution time.
    """
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    binds = compiled.binds
    expanding = [name for name, bind in binds.items() if bind.expanding or bind.literal_execute]
    if expanding:
        raise TypeError(f"parameters {expanding} are expanded at execution: not for the driver")
    names = tuple(compiled.positiontup or ())
    processors = tuple(
        binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    fixed = {name: bind for name, bind in binds.items() if not bind.required}
    # What a select, `text().columns()` or a RETURNING clause says its columns are.
    columns = statement.exported_columns if isinstance(statement, ReturnsRows) else ()
    typed = tuple((column.name, column.type.dialect_impl(dialect)) for column in columns)
    textual = isinstance(statement, TextualSelect)
    by_position = not textual or bool(getattr(statement, "positional", True))
    return _Compiled(
        compiled.string, names, fixed, processors, typed, dialect, textual, by_position
    )


class DriverConnection:
    """A pooled connection whose statements run on asyncpg (see the module's doc)."""

    __slots__ = ("_adapted", "_driver", "_factory", "fairy")

    def __init__(self, factory: DriverConnections, fairy: PoolProxiedConnection) -> None:
        self._factory = factory
        self.fairy = fairy  # the pool's checked-out connection
        # SQLAlchemy's adapter (it translates asyncpg's errors) and asyncpg's connection;
        # kept here because invalidating the checked-out connection drops them from it.
        self._adapted: DBAPIConnection = fairy.dbapi_connection  # type: ignore[assignment]
        self._driver: asyncpg.Connection = fairy.driver_connection

    @property
    def in_transaction(self) -> bool:
        """Whether the server has a transaction open on this connection."""
        return bool(self._driver.is_in_transaction())

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> DriverResult:
        """Run one statement; its rows (none for a statement that returns none).

        Raises:
            sqlalchemy.exc.DBAPIError: as SQLAlchemy would raise it (IntegrityError, ...).
        """
        compiled = self._factory.compiled(statement)
        arguments = compiled.arguments(parameters or {})
        for listener in _LISTENERS.get(self._factory.sync_engine, ()):
            listener(compiled.sql, arguments)
        try:
            records = await self._driver.fetch(compiled.sql, *arguments)
        except BaseException as error:
            failure = self._failed(error, compiled.sql, arguments)
            if failure is error:
                raise
            raise failure from error
        return DriverResult(compiled.rows(records))

    async def control(self, sql: str) -> None:
        """Send a transaction control statement (`BEGIN`, `COMMIT`, `ROLLBACK`).

        Listeners are told of it as of a statement without arguments.
        """
        for listener in _LISTENERS.get(self._factory.sync_engine, ()):
            listener(sql, ())
        try:
            await self._driver.execute(sql)
        except BaseException as error:
            failure = self._failed(error, sql, ())
            if failure is error:
                raise
            raise failure from error

    def _failed(self, error: BaseException, sql: str, arguments: Sequence[Any]) -> BaseException:
        """What to raise for `error` (translated while the connection is still there);
        a connection that may still be busy is closed."""
        failure = error
        if isinstance(error, Exception):
            failure = self._factory.translate(error, sql, arguments, self._adapted, self.fairy)
        if not isinstance(error, asyncpg.PostgresError) and self.fairy.is_valid:
            # Cancelled mid-statement, a timeout, or the connection broke: asyncpg may
            # still wait for a reply, so the connection is closed, not handed on.
            self.fairy.invalidate(error if isinstance(error, Exception) else None)
        return failure

    async def scalars(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> DriverResult:
        """The first column of each row."""
        return (await self.execute(statement, parameters)).scalars()

    async def scalar(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """The first row's first column, or None."""
        return (await self.execute(statement, parameters)).scalar()


class DriverUnit:
    """`async with`: one guarded unit of work on a `DriverConnection`, in autocommit
    or, with `begin` (`BEGIN` or `BEGIN_GENERIC_PLANS`), between it and `COMMIT`
    (`ROLLBACK` when the block raises).

    Guarded as `quizbot.resilience.GuardedConnection` is: the breaker is checked first
    and told the outcome after.
    """

    __slots__ = ("_begin", "_connection", "_factory")

    def __init__(self, factory: DriverConnections, *, begin: str | None = None) -> None:
        if begin not in (None, BEGIN, BEGIN_GENERIC_PLANS):
            raise ValueError(f"not a transaction's beginning: {begin!r}")
        self._factory = factory
        self._begin = begin
        self._connection: DriverConnection | None = None

    async def __aenter__(self) -> DriverConnection:
        breaker = self._factory.breaker
        if breaker is not None:
            breaker.before()
        try:
            fairy = await greenlets.run(self._factory.sync_engine.raw_connection)
        except BaseException as error:
            settle(breaker, error)  # raises for a connection failure
            raise
        self._connection = DriverConnection(self._factory, fairy)
        if self._begin is not None:
            try:
                await self._connection.control(self._begin)
            except BaseException as error:
                if fairy.is_valid and self._connection.in_transaction:
                    # The BEGIN ran but what was sent with it failed: an aborted
                    # transaction that SQLAlchemy's reset on return would not end.
                    fairy.invalidate(error if isinstance(error, Exception) else None)
                await settle_after(greenlets.run(fairy.close), breaker, error)
                raise
        return self._connection

    async def __aexit__(
        self,
        type_: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection = self._connection
        assert connection is not None
        fairy = connection.fairy
        outcome = value
        if self._begin is not None and fairy.is_valid:
            try:
                await connection.control("COMMIT" if value is None else "ROLLBACK")
            except BaseException as error:
                # A failed COMMIT ended the transaction (the server rolled it back): the
                # unit failed. A ROLLBACK the server refused leaves a session of
                # unknown state: it is closed, not handed on. A cancellation wins.
                if value is None or not isinstance(error, Exception):
                    outcome = error
                elif fairy.is_valid:
                    fairy.invalidate(error)
        if fairy.is_valid and connection.in_transaction:
            # SQLAlchemy's reset on return does not know of a transaction begun here:
            # never hand on a connection that is still in one.
            fairy.invalidate()
        await settle_after(greenlets.run(fairy.close), self._factory.breaker, outcome)
        if outcome is not value:
            assert outcome is not None
            raise outcome


class DriverConnections:
    """A factory of driver units over an engine's pool: `async with connections() as conn:`.

    For an engine in autocommit mode (`db.create_engine(autocommit=True)`).
    """

    def __init__(self, engine: AsyncEngine, breaker: CircuitBreaker | None = None) -> None:
        self.engine = engine
        self.sync_engine = engine.sync_engine
        self.dialect = engine.sync_engine.dialect
        self.breaker = breaker
        # Compiled statements by the statement object's id. The statements are module
        # constants or memoised; an entry goes with its statement.
        self._compiled: dict[int, tuple[weakref.ref[ClauseElement], _Compiled]] = {}

    def __call__(self) -> DriverUnit:
        return DriverUnit(self)

    def transaction(self, *, generic_plans: bool = False) -> DriverUnit:
        """A unit of work whose statements commit together: `async with
        connections.transaction() as conn:`.

        Args:
            generic_plans: the server uses each statement's generic plan, made once per
                connection, instead of planning each run with its values (PostgreSQL's
                `plan_cache_mode`, for this transaction only). For statements whose
                best plan does not depend on their values, and which the server would
                otherwise keep planning: those taking arrays, whose generic plan guesses
                ten elements per array and so looks dearer than a plan for the real
                length, however short the real run is.
        """
        return DriverUnit(self, begin=BEGIN_GENERIC_PLANS if generic_plans else BEGIN)

    def compiled(self, statement: Executable) -> _Compiled:
        """`statement` compiled for the driver, once per statement object.

        Raises:
            TypeError: not a SQL statement (an ORM-level construct the driver cannot run).
        """
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"the driver runs SQL statements, not {type(statement).__name__}")
        key = id(statement)
        entry = self._compiled.get(key)
        if entry is not None and entry[0]() is statement:
            return entry[1]
        compiled = compile_for_driver(statement, self.dialect)
        self._compiled[key] = (
            weakref.ref(statement, lambda _ref: self._compiled.pop(key, None)),
            compiled,
        )
        return compiled

    async def prime(
        self, connection: AsyncConnection, statements: Iterable[Executable]
    ) -> list[NotPrimed]:
        """Prepare `statements` on a pooled connection in autocommit, as their first
        use would, so that no command pays for it; return those it could not prepare.

        A new server process has read none of the catalogs a statement needs (tables,
        indexes, types, functions) and asyncpg has prepared nothing: on the benchmark's
        data a quiz's end took 11-20 ms as a fresh connection's first statement, against
        1-2 ms after. Each statement is prepared into asyncpg's statement cache (the
        one `DriverConnection.execute` reads) and bound to a portal with every
        parameter NULL under `plan_cache_mode = force_generic_plan` (`PRIME_BEGIN`), so
        that the server builds and keeps the statement's generic plan: the one it
        switches to after its first five runs unless that looks dearer than theirs,
        and the one every run uses on a connection with generic plans forced. So the
        catalogs are read, the statement prepared, the generic plan made, and no
        custom plan counted. The transaction that holds
        the portals is rolled back: nothing is executed, no row read or written. The
        prepared quiz's end then took 2.5-3.7 ms at its first run; running each
        statement once with NULLs instead left 1.4-2.1 ms, but a NULL can mean "every
        row" (a page's `LIMIT NULL`): start-up took 2.3 s instead of 0.8-1.0 s.

        A statement the server cannot prepare (bad SQL, a missing table) is skipped; at
        the first lock wait past `PRIME_TIMEOUT_MS` (a migration holds a table) the
        rest of the statements are skipped. The statements are not told to `listen`'s
        listeners: they are no unit of work.

        Raises:
            TypeError: a statement the driver cannot run (before the connection is used).
            ValueError: the connection is in a transaction (it must be in autocommit).
            Errors of the connection itself, which is then invalidated (the pool
            replaces it).
        """
        compiled = [self.compiled(statement) for statement in statements]
        fairy = await connection.get_raw_connection()
        driver: asyncpg.Connection = fairy.driver_connection
        if driver.is_in_transaction():
            raise ValueError("prime a connection in autocommit: this one is in a transaction")
        skipped: list[NotPrimed] = []
        try:
            for index, statement in enumerate(compiled):
                if not driver.is_in_transaction():  # a portal lives in a transaction
                    await driver.execute(PRIME_BEGIN)
                try:
                    await driver.cursor(statement.sql, *[None] * len(statement.names))
                except asyncpg.PostgresError as error:
                    await driver.execute("ROLLBACK")
                    if isinstance(error, asyncpg.LockNotAvailableError):
                        skipped += [NotPrimed(c.sql, str(error)) for c in compiled[index:]]
                        break
                    skipped.append(NotPrimed(statement.sql, str(error)))
            if driver.is_in_transaction():
                await driver.execute("ROLLBACK")
            fairy.info[PRIMED] = True
        except BaseException as error:
            # Cancelled or broken mid-protocol: not a connection to hand on.
            fairy.invalidate(error if isinstance(error, Exception) else None)
            raise
        return skipped

    def translate(
        self,
        error: Exception,
        sql: str,
        arguments: Sequence[Any],
        adapted: DBAPIConnection,
        fairy: PoolProxiedConnection,
    ) -> BaseException:
        """The exception SQLAlchemy would raise for the driver's `error`.

        asyncpg's errors go through the dialect's adapter (which gives them the DBAPI
        classes and their SQLSTATE) and then SQLAlchemy's wrapper, so callers see an
        `IntegrityError` or `DBAPIError` with `.orig` as from a Core connection. A lost
        connection is invalidated, and so, as SQLAlchemy does, is every connection the pool
        held before it (the server may have restarted: each is replaced at its next
        checkout instead of failing a unit of work).
        """
        try:
            adapted._handle_exception(error)  # always raises
        except Exception as dbapi_error:
            translated: BaseException = dbapi_error
        else:  # pragma: no cover - the adapter always raises
            translated = error
        dbapi_base = self.dialect.loaded_dbapi.Error
        if not isinstance(translated, dbapi_base):
            return translated  # not a database error (an OSError, a timeout): as SQLAlchemy
        lost = self.dialect.is_disconnect(translated, adapted, None)
        if lost:
            # What SQLAlchemy's Connection does on a disconnect (there is no public
            # spelling of the pool-wide part).
            self.sync_engine.pool._invalidate(fairy, translated)  # this one included
        return sa_exc.DBAPIError.instance(
            sql,
            tuple(arguments),
            translated,
            dbapi_base,
            connection_invalidated=lost,
            dialect=self.dialect,
        )
