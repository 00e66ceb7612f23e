"""Statements run on the driver (`quizbot.driver`) give what SQLAlchemy's Core gives:
the same rows (types, enums, arrays, attribute access), the same exceptions, and a
pool that gets its connections back, or loses them when they cannot be trusted."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from greenlet import getcurrent
from sqlalchemy import String, bindparam, column, event, exc, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from quizbot import driver, greenlets
from quizbot.config import Settings
from quizbot.db import create_engine
from quizbot.db_admin import asyncpg_args
from quizbot.driver import DriverConnections
from quizbot.errors import DatabaseUnavailableError
from quizbot.models import Difficulty, Question, QuestionKind, SessionMode, SessionStatus
from quizbot.observability import count_statements
from quizbot.repositories import QuestionRepository, SessionRepository
from quizbot.repositories.sessions import NewSession
from quizbot.resilience import CircuitBreaker, GuardedConnections
from tests.database import drop_database, migrated_database


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    """This module's own database: its units of work commit."""
    url = await migrated_database()
    yield url
    await drop_database(url)


@pytest.fixture
async def autocommit(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine as the app builds it, with a pool of two."""
    engine = create_engine(Settings(_env_file=None), database_url, pool_size=2, autocommit=True)  # type: ignore[call-arg]
    yield engine
    await engine.dispose()


def _invalidations(engine: AsyncEngine) -> list[BaseException | None]:
    """What the pool's connections are invalidated with, from now on."""
    seen: list[BaseException | None] = []
    event.listen(engine.sync_engine, "invalidate", lambda _c, _r, error: seen.append(error))
    return seen


def _new_quiz(channel_id: int, question_ids: list[int]) -> NewSession:
    return NewSession(
        guild_id=channel_id // 10,
        channel_id=channel_id,
        user_id=7,
        display_name="Ada",
        guild_name="Guild",
        mode=SessionMode.SOLO,
        topic="science",
        category=None,
        difficulty="easy",
        time_limit=30,
        question_started_at=dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC),
        questions=question_ids,
    )


async def test_rows_are_what_a_core_connection_returns(autocommit: AsyncEngine) -> None:
    """A typed statement (enums, an array, timestamps) and a Core select (JSON, floats,
    enums) read the same on both paths, by attribute and by index."""
    core, on_driver = GuardedConnections(autocommit), DriverConnections(autocommit)
    async with on_driver() as conn:
        started = await SessionRepository(session=conn).start(_new_quiz(1001, [3, 1, 2]))
    assert started.status is SessionStatus.ACTIVE and started.mode is SessionMode.SOLO
    assert started.question_ids == [3, 1, 2]
    assert started.question_started_at == dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
    async with core() as conn:
        again = await SessionRepository(session=conn).require_row(started.id)
    assert tuple(again) == tuple(started)

    common = {"category": "Units", "explanation": "SI.", "difficulty": "easy"}
    async with core() as conn:
        await QuestionRepository(session=conn).add_many(
            [
                {
                    **common,
                    "topic": "Driver",
                    "prompt": "Force?",
                    "kind": QuestionKind.FREE_TEXT,
                    "answer": "newton",
                    "tolerance": 0.5,
                },
                {
                    **common,
                    "topic": "Driver",
                    "prompt": "Pick",
                    "kind": QuestionKind.MULTIPLE_CHOICE,
                    "answer": "b",
                    "choices": ["a", "b", "c"],
                    "difficulty": "hard",
                },
            ]
        )
        repo = QuestionRepository(session=conn)
        ids = await repo.pool_ids(guild_id=None, topic="driver")
        expected = await repo.get_many(ids)
        hard = await repo.pool_ids(guild_id=5, topic="DRIVER", difficulty=Difficulty.HARD)
    assert len(ids) == 2 and len(hard) == 1
    async with on_driver() as conn:
        repo = QuestionRepository(session=conn)
        got = await repo.get_many(ids)
        assert await repo.pool_ids(guild_id=None, topic="driver") == ids
        assert await repo.pool_ids(guild_id=5, topic="DRIVER", difficulty=Difficulty.HARD) == hard
    assert got == expected and [row.id for row in got] == list(ids)
    assert {row.kind for row in got} == {QuestionKind.FREE_TEXT, QuestionKind.MULTIPLE_CHOICE}
    assert [row.choices for row in got] == [row.choices for row in expected]  # JSON
    assert [row.tolerance for row in got] == [0.5, None]  # a float


async def test_a_constraint_violation_is_sqlalchemy_s_integrity_error(
    autocommit: AsyncEngine,
) -> None:
    on_driver = DriverConnections(autocommit)
    duplicate = text("INSERT INTO guilds (guild_id, name) VALUES (:id, 'x')")
    async with on_driver() as conn:
        await conn.execute(duplicate, {"id": 424242})
        with pytest.raises(exc.IntegrityError) as caught:
            await conn.execute(duplicate, {"id": 424242})
    assert getattr(caught.value.orig, "sqlstate", None) == "23505"
    assert not caught.value.connection_invalidated
    # A server error leaves the connection usable: it went back to the pool.
    assert autocommit.sync_engine.pool.checkedin() == 1  # type: ignore[attr-defined]


async def test_a_statement_cancelled_midway_does_not_return_its_connection(
    autocommit: AsyncEngine,
) -> None:
    """asyncpg may still wait for the cancelled statement's reply: the connection is
    closed, and the next unit gets a working one."""
    on_driver = DriverConnections(autocommit)
    invalidated = _invalidations(autocommit)

    async def sleep() -> None:
        async with on_driver() as conn:
            await conn.execute(text("SELECT pg_sleep(5)"))

    task = asyncio.create_task(sleep())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pool: Any = autocommit.sync_engine.pool
    assert pool.checkedout() == 0
    assert len(invalidated) == 1  # closed, not returned as it was
    async with on_driver() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_units_waiting_for_the_pool_are_served_on_reused_greenlets(
    autocommit: AsyncEngine,
) -> None:
    """Six units on a pool of two: four checkouts wait in the pool's queue, each on a
    greenlet of its own (`quizbot.greenlets`), and all are served; the next unit's
    checkout runs on one of those greenlets again."""
    on_driver = DriverConnections(autocommit)
    checked_out_on: list[Any] = []
    event.listen(autocommit.sync_engine, "checkout", lambda *_: checked_out_on.append(getcurrent()))

    async def backend() -> int:
        async with on_driver() as conn:
            statement = text("SELECT pg_backend_pid() FROM pg_sleep(0.05)")
            pid: int = (await conn.execute(statement)).scalar_one()
            return pid

    pids = await asyncio.gather(*(backend() for _ in range(6)))
    assert len(set(pids)) == 2
    pool: Any = autocommit.sync_engine.pool
    assert pool.checkedout() == 0
    assert len(checked_out_on) == 6
    assert all(isinstance(g, greenlets._Worker) for g in checked_out_on)
    assert len({id(g) for g in checked_out_on}) >= 4  # the waiting ones, at once
    await backend()
    assert any(checked_out_on[-1] is g for g in checked_out_on[:-1])


async def test_what_the_driver_cannot_run_is_refused(autocommit: AsyncEngine) -> None:
    on_driver = DriverConnections(autocommit)
    expanding = select(Question.id).where(Question.id.in_(bindparam("ids", expanding=True)))
    async with on_driver() as conn:
        with pytest.raises(TypeError, match="expanded at execution"):
            await conn.execute(expanding, {"ids": [1, 2]})
        with pytest.raises(exc.ArgumentError, match="'b'"):
            await conn.execute(text("SELECT :a, :b"), {"a": 1})


async def test_results_and_their_accessors(autocommit: AsyncEngine) -> None:
    on_driver = DriverConnections(autocommit)
    pairs = text("SELECT x AS n, x * 2 AS twice FROM generate_series(1, :k) AS x ORDER BY x")
    typed = text("SELECT 'active' AS status").columns(
        column("status", SessionRepository.model_type.__table__.c.status.type)  # type: ignore[attr-defined]
    )
    async with on_driver() as conn:
        rows = (await conn.execute(pairs, {"k": 3})).all()
        assert [(r.n, r.twice) for r in rows] == [(1, 2), (2, 4), (3, 6)]
        assert [tuple(r) for r in rows] == [(1, 2), (2, 4), (3, 6)]
        assert (await conn.scalars(pairs, {"k": 2})).all() == [1, 2]
        assert (await conn.execute(pairs, {"k": 0})).one_or_none() is None
        assert (await conn.execute(pairs, {"k": 0})).first() is None
        with pytest.raises(exc.MultipleResultsFound):
            (await conn.execute(pairs, {"k": 2})).one()
        with pytest.raises(exc.NoResultFound):
            (await conn.execute(pairs, {"k": 0})).one()
        assert (await conn.execute(typed)).scalar_one() is SessionStatus.ACTIVE
        # Columns given by keyword are matched by name, not position (as SQLAlchemy).
        status_type = typed.selected_columns[0].type
        by_name = text("SELECT 'x' AS b, 'active' AS status").columns(status=status_type, b=String)
        row = (await conn.execute(by_name)).one()
        assert (row.b, row.status) == ("x", SessionStatus.ACTIVE)
        assert (await conn.scalars(text("SELECT NULL"))).one() is None  # a row, holding NULL
        assert await conn.scalar(text("SELECT NULL")) is None
        # Bound in the statement itself, None included; a callable is called each time.
        fixed = text("SELECT :a AS a, CAST(:b AS int) AS b").bindparams(a=5, b=None)
        assert tuple((await conn.execute(fixed)).one()) == (5, None)
        calls = iter(range(10))
        counted = text("SELECT CAST(:n AS int)").bindparams(
            bindparam("n", callable_=lambda: next(calls))
        )
        assert [(await conn.execute(counted)).scalar() for _ in range(2)] == [0, 1]


async def test_statements_are_counted_and_compiled_once(autocommit: AsyncEngine) -> None:
    on_driver = DriverConnections(autocommit)
    seen: list[tuple[str, Sequence[Any]]] = []

    def listener(sql: str, arguments: Sequence[Any]) -> None:
        seen.append((sql, arguments))

    statement = text("SELECT :a + 1 AS b")
    driver.listen(autocommit, listener)
    try:
        with count_statements(autocommit) as counted:
            async with on_driver() as conn:
                await conn.execute(statement, {"a": 1})
                await conn.execute(statement, {"a": 2})
    finally:
        driver.remove(autocommit, listener)
    assert counted.count == 2
    assert seen == [("SELECT $1 + 1 AS b", [1]), ("SELECT $1 + 1 AS b", [2])]
    assert on_driver.compiled(statement) is on_driver.compiled(statement)
    # An entry goes with its statement (statements built per call do not pile up).
    del statement
    gc.collect()
    assert len(on_driver._compiled) == 0


async def test_a_transaction_commits_together_or_not_at_all(database_url: str) -> None:
    """On a pool of one: a unit that left its transaction open would show it here."""
    engine = create_engine(Settings(_env_file=None), database_url, pool_size=1, autocommit=True)  # type: ignore[call-arg]
    try:
        await _commit_or_not(DriverConnections(engine))
    finally:
        await engine.dispose()


async def _commit_or_not(on_driver: DriverConnections) -> None:
    insert = text("INSERT INTO guilds (guild_id, name) VALUES (:id, 'tx')")
    count = text("SELECT count(*) FROM guilds WHERE guild_id IN (515151, 525252)")
    async with on_driver.transaction() as conn:
        await conn.execute(insert, {"id": 515151})
    async with on_driver() as conn:
        assert not conn.in_transaction
        assert (await conn.execute(count)).scalar_one() == 1

    with pytest.raises(RuntimeError, match="changed my mind"):
        async with on_driver.transaction() as conn:
            await conn.execute(insert, {"id": 525252})
            raise RuntimeError("changed my mind")
    async with on_driver() as conn:
        assert not conn.in_transaction
        assert (await conn.execute(count)).scalar_one() == 1  # rolled back


async def test_a_unit_with_generic_plans_sets_them_for_its_transaction_only(
    database_url: str,
) -> None:
    """`transaction(generic_plans=True)`: the server's generic plans inside (sent with
    the BEGIN), the pool's default after a commit and after a rollback."""
    engine = create_engine(Settings(_env_file=None), database_url, pool_size=1, autocommit=True)  # type: ignore[call-arg]
    on_driver = DriverConnections(engine)
    mode = text("SELECT current_setting('plan_cache_mode')")
    try:
        async with on_driver.transaction(generic_plans=True) as conn:
            assert await conn.scalar(mode) == "force_generic_plan"
        async with on_driver() as conn:
            assert await conn.scalar(mode) == "auto"
        with pytest.raises(RuntimeError, match="undo"):
            async with on_driver.transaction(generic_plans=True) as conn:
                assert await conn.scalar(mode) == "force_generic_plan"
                raise RuntimeError("undo")
        async with on_driver() as conn:
            assert not conn.in_transaction
            assert await conn.scalar(mode) == "auto"
        with pytest.raises(ValueError, match="not a transaction's beginning"):
            driver.DriverUnit(on_driver, begin="COMMIT")
    finally:
        await engine.dispose()


async def test_a_beginning_that_fails_after_its_begin_hands_on_no_aborted_transaction(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The BEGIN and the setting go in one message: if the setting fails, the BEGIN has
    run and the server holds an aborted transaction. That connection is closed, not
    returned to the pool, where the next unit would fail on it."""
    engine = create_engine(Settings(_env_file=None), database_url, pool_size=1, autocommit=True)  # type: ignore[call-arg]
    on_driver = DriverConnections(engine)
    monkeypatch.setattr(
        driver, "BEGIN_GENERIC_PLANS", f"{driver.BEGIN}; SET LOCAL no_such_setting = 1"
    )
    try:
        with pytest.raises(exc.DBAPIError, match="no_such_setting"):
            async with on_driver.transaction(generic_plans=True):
                pytest.fail("the unit must not start")
        async with on_driver() as conn:  # the pool's only connection: a new one
            assert not conn.in_transaction
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


async def test_a_failed_commit_fails_the_unit(autocommit: AsyncEngine) -> None:
    """A constraint checked at COMMIT: the unit raises SQLAlchemy's IntegrityError, and
    the connection (its transaction ended by the server) goes back to the pool."""
    on_driver = DriverConnections(autocommit)
    invalidated = _invalidations(autocommit)
    async with on_driver() as conn:
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS deferred_once "
                "(x int UNIQUE DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    with pytest.raises(exc.IntegrityError) as caught:
        async with on_driver.transaction() as conn:
            await conn.execute(text("INSERT INTO deferred_once VALUES (1), (1)"))
    assert getattr(caught.value.orig, "sqlstate", None) == "23505"
    async with on_driver() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM deferred_once"))).scalar() == 0
    assert invalidated == []


async def test_a_statement_timeout_is_a_connection_failure(database_url: str) -> None:
    """asyncpg's own timeout: the connection is closed (it may still be busy) and the
    breaker counts the failure, as through SQLAlchemy's Core."""
    engine = create_engine(
        Settings(_env_file=None, db_command_timeout=0.2),
        database_url,
        pool_size=1,
        autocommit=True,  # type: ignore[call-arg]
    )
    breaker = CircuitBreaker(failure_threshold=5)
    on_driver = DriverConnections(engine, breaker)
    invalidated = _invalidations(engine)
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with on_driver() as conn:
                await conn.execute(text("SELECT pg_sleep(2)"))
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert breaker.consecutive_failures == 1 and len(invalidated) == 1
        async with on_driver() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_connection_killed_by_the_server_is_replaced_with_the_pool(
    database_url: str,
) -> None:
    """The server ends the session: SQLAlchemy's DBAPIError marked invalidated, the
    breaker told, and the pool's other connections replaced at their next checkout
    (the server may have restarted) rather than each failing a unit of work."""
    engine = create_engine(Settings(_env_file=None), database_url, pool_size=2, autocommit=True)  # type: ignore[call-arg]
    breaker = CircuitBreaker(failure_threshold=5)
    on_driver = DriverConnections(engine, breaker)
    pid = text("SELECT pg_backend_pid()")
    try:
        async with on_driver() as first, on_driver() as second:  # two pooled connections
            pids = {
                (await first.execute(pid)).scalar_one(),
                (await second.execute(pid)).scalar_one(),
            }
        killer = await asyncpg.connect(**asyncpg_args(database_url))
        try:
            for backend in pids:
                await killer.execute("SELECT pg_terminate_backend($1)", backend)
        finally:
            await killer.close()
        await asyncio.sleep(0.1)
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with on_driver() as conn:
                await conn.execute(text("SELECT 1"))
        cause = caught.value.__cause__
        assert isinstance(cause, exc.DBAPIError) and cause.connection_invalidated
        assert breaker.consecutive_failures == 1
        # The other connection of the old generation is replaced, not tried and failed.
        for _ in range(3):
            async with on_driver() as conn:
                assert (await conn.execute(pid)).scalar_one() not in pids
    finally:
        await engine.dispose()


async def _prepared_here(connection: Any) -> dict[str, str]:
    """The statements the server holds prepared for this connection's session, by name
    (a statement prepared again gets a new name)."""
    raw = (await connection.get_raw_connection()).driver_connection
    rows = await raw.fetch("SELECT name, statement FROM pg_prepared_statements")
    return {r["name"]: r["statement"] for r in rows}


async def test_priming_prepares_a_statement_as_its_first_use_would(database_url: str) -> None:
    """After `prime`, running the statement prepares nothing new on that connection (an
    INSERT whose NULL key would fail, a read that would find nothing)."""
    engine = create_engine(Settings(_env_file=None), database_url, pool_size=1, autocommit=True)  # type: ignore[call-arg]
    on_driver = DriverConnections(engine)
    insert = text(
        "INSERT INTO guilds (guild_id, name) VALUES (:guild_id, :name) RETURNING guild_id"
    )
    reads = text("SELECT name FROM guilds WHERE guild_id = :guild_id")
    try:
        async with engine.connect() as connection:
            assert await on_driver.prime(connection, [insert, reads]) == []
            primed = await _prepared_here(connection)
            wanted = {on_driver.compiled(insert).sql, on_driver.compiled(reads).sql}
            assert wanted <= set(primed.values())
            raw = await connection.get_raw_connection()
            assert not raw.driver_connection.is_in_transaction()
        async with on_driver() as conn:  # the pool's only connection
            assert await conn.scalar(insert, {"guild_id": 4242, "name": "primed"}) == 4242
            assert await conn.scalar(reads, {"guild_id": 4242}) == "primed"
        async with engine.connect() as connection:
            assert await _prepared_here(connection) == primed
    finally:
        await engine.dispose()


async def _plans_here(connection: Any, sql: str) -> tuple[int, int]:
    """How often the server has used the generic plan of `sql` on this connection, and
    how many custom plans it has made for it."""
    raw = (await connection.get_raw_connection()).driver_connection
    row = await raw.fetchrow(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
        sql,
    )
    assert row is not None, "not prepared on this connection"
    return int(row["generic_plans"]), int(row["custom_plans"])


async def test_priming_makes_the_generic_plan_and_counts_no_custom_one(
    database_url: str,
) -> None:
    """The server keeps a statement's generic plan after its first five custom plans when
    it costs no more than their average. Priming with NULLs must not add a sixth,
    costless "custom plan" to that average (a condition on NULL folds to false), or the
    server keeps planning every run long after.

    Here the generic plan of a count over a group costs a little less than a real run's
    custom plan with its planning. Primed the old way (NULLs planned as a custom plan),
    the sixth run was still a custom plan; now priming builds the generic plan, and the
    sixth run uses it."""
    engine = create_engine(Settings(_env_file=None), database_url, pool_size=1, autocommit=True)  # type: ignore[call-arg]
    on_driver = DriverConnections(engine)
    # A table of this session only: the pool's one connection serves every step.
    count_ahead = text(
        "SELECT p, (SELECT count(*) FROM pg_temp.ranked o WHERE o.g = :g AND o.p > r.p) "
        "FROM pg_temp.ranked r WHERE r.g = :g AND r.u = :u"
    )
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(
                "CREATE TEMP TABLE ranked (g bigint, u bigint, p int, PRIMARY KEY (g, u))"
            )
            await connection.exec_driver_sql(
                "INSERT INTO ranked SELECT i % 50, i, i % 1000 FROM generate_series(1, 20000) i"
            )
            await connection.exec_driver_sql("ANALYZE ranked")
            assert await on_driver.prime(connection, [count_ahead]) == []
            sql = on_driver.compiled(count_ahead).sql
            assert await _plans_here(connection, sql) == (1, 0)
            raw = (await connection.get_raw_connection()).driver_connection
            assert await raw.fetchval("SHOW plan_cache_mode") == "auto"  # SET LOCAL only
        for n in range(6):
            async with on_driver() as conn:
                assert len(list(await conn.execute(count_ahead, {"g": 3, "u": 103 + 50 * n}))) == 1
        async with engine.connect() as connection:
            # Five custom plans, then the generic plan.
            assert await _plans_here(connection, sql) == (2, 5)
    finally:
        await engine.dispose()


async def test_priming_executes_nothing(autocommit: AsyncEngine) -> None:
    """A primed statement is planned, not run: a sequence it would draw from (which no
    rollback would undo) is not drawn."""
    on_driver = DriverConnections(autocommit)
    sequence = text("SELECT last_value, is_called FROM quiz_sessions_id_seq")
    async with on_driver() as conn:
        before = tuple(await conn.execute(sequence))
    draws = text("SELECT nextval('quiz_sessions_id_seq') + coalesce(CAST(:n AS bigint), 0)")
    async with autocommit.connect() as connection:
        assert await on_driver.prime(connection, [draws]) == []
    async with on_driver() as conn:
        assert tuple(await conn.execute(sequence)) == before


async def test_a_statement_the_server_cannot_prepare_is_skipped(autocommit: AsyncEngine) -> None:
    """It is returned with the server's error; the others are still primed after it."""
    on_driver = DriverConnections(autocommit)
    broken = text("SELECT x FROM no_such_table WHERE x = :x")
    fine = text("SELECT :x AS x")
    async with autocommit.connect() as connection:
        skipped = await on_driver.prime(connection, [broken, fine])
        assert [s.sql for s in skipped] == [on_driver.compiled(broken).sql]
        assert "no_such_table" in skipped[0].error
        assert on_driver.compiled(fine).sql in (await _prepared_here(connection)).values()
        raw = await connection.get_raw_connection()
        assert not raw.driver_connection.is_in_transaction()


async def test_priming_refuses_what_it_cannot_do_before_using_the_connection(
    autocommit: AsyncEngine,
) -> None:
    """A statement the driver cannot run, or a connection in a transaction (whose work
    priming would roll back), is an error, and the connection stays usable."""
    on_driver = DriverConnections(autocommit)
    expanding = select(Question.id).where(Question.id.in_([1, 2]))
    async with autocommit.connect() as connection:
        with pytest.raises(TypeError):
            await on_driver.prime(connection, [text("SELECT 1"), expanding])
        raw = await connection.get_raw_connection()
        assert raw.is_valid
        await raw.driver_connection.execute("BEGIN")
        try:
            with pytest.raises(ValueError, match="autocommit"):
                await on_driver.prime(connection, [text("SELECT 1")])
            assert raw.driver_connection.is_in_transaction()  # left as it was
        finally:
            await raw.driver_connection.execute("ROLLBACK")


async def test_priming_does_not_wait_behind_a_migration(database_url: str) -> None:
    """A table locked by a schema change cannot be planned: priming gives up at the
    first wait past PRIME_TIMEOUT_MS instead of delaying the bot's start once per
    statement, and returns what it skipped."""
    engine = create_engine(Settings(_env_file=None), database_url, pool_size=1, autocommit=True)  # type: ignore[call-arg]
    on_driver = DriverConnections(engine)
    free = text("SELECT prompt FROM questions WHERE id = :id")
    locked = text("SELECT name FROM guilds WHERE guild_id = :guild_id")
    after = text("SELECT user_id FROM users WHERE user_id = :user_id")
    migration = await asyncpg.connect(**asyncpg_args(database_url))
    try:
        await migration.execute("BEGIN; LOCK TABLE guilds IN ACCESS EXCLUSIVE MODE")
        async with engine.connect() as connection:
            # Without the lock timeout this would wait for the end of the test.
            skipped = await asyncio.wait_for(on_driver.prime(connection, [free, locked, after]), 30)
            raw = await connection.get_raw_connection()
            assert not raw.driver_connection.is_in_transaction()
        compiled = [on_driver.compiled(s).sql for s in (locked, after)]
        assert [s.sql for s in skipped] == compiled
        assert all("lock timeout" in s.error for s in skipped)
    finally:
        await migration.execute("ROLLBACK")
        await migration.close()
        await engine.dispose()
