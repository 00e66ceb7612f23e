"""What goes over the wire for a unit of work. SQLAlchemy's statement events count the
statements; asyncpg's query logger sees what they do not: BEGIN, COMMIT, ROLLBACK and
the pool's ping (it does not log prepared statements, which the events count)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from quizbot import driver
from quizbot.app import WRITER_SPARE, App, recycle_ahead_s
from quizbot.cache import QuizCache
from quizbot.config import Settings
from quizbot.db import StaggeredRecycle
from quizbot.db_admin import asyncpg_args
from quizbot.models import SessionMode
from quizbot.observability import count_statements
from quizbot.repositories import QuestionRepository, SessionRepository
from quizbot.resilience import BreakerState
from quizbot.services.quiz import FINISH_STATEMENTS, MESSAGE_FLUSHES, QuestionView, QuizFilters
from quizbot.services.stats import Period
from tests import factories
from tests.database import drop_database, migrated_database
from tests.factories import GuildFactory, GuildMemberFactory, UserFactory


def _app(database_url: str, **settings: Any) -> App:
    return App.create(
        Settings(_env_file=None, redis_url=None, db_pool_monitor_interval=0, **settings),  # type: ignore[call-arg]
        database_url,
        QuizCache(QuizCache.memory_backend(), enabled=settings.get("cache_enabled", True)),
    )


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    """This module's own database: its apps really commit (the bundled bank, quizzes),
    which must not leak into the rolled-back tests of other modules."""
    url = await migrated_database()
    yield url
    await drop_database(url)


@pytest.fixture
async def wire(
    database_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[App, list[str]]]:
    """An App on the test database whose connections log every query they send that
    is not a statement (BEGIN, COMMIT, ROLLBACK, pings).

    Indirect parametrisation passes Settings overrides (default: none).
    """
    app = _app(database_url, **getattr(request, "param", {}))
    sent: list[str] = []
    # What the app ran on the driver (quizbot.driver): asyncpg logs those queries too,
    # but they are statements, which count_statements counts.
    statements: Counter[str] = Counter()

    def _statement(sql: str, _arguments: Sequence[Any]) -> None:
        if sql not in driver.TRANSACTION_CONTROL:  # those stay in `sent`
            statements[sql] += 1

    def _log(query: Any) -> None:
        if statements[query.query] > 0:
            statements[query.query] -= 1
        else:
            sent.append(query.query)

    def _log_queries(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(_log)

    for engine in (app.engine, app.answer_engine):
        if engine is not None:
            event.listen(engine.sync_engine, "connect", _log_queries)
            driver.listen(engine, _statement)

    try:
        yield app, sent
    finally:
        await app.close()


async def test_a_read_is_one_statement(wire: tuple[App, list[str]]) -> None:
    app, sent = wire
    await app.stats.member_stats(guild_id=1, user_id=2)  # connects, warms the pool
    await app.cache.clear()
    sent.clear()
    with count_statements(app.engine) as statements:
        await app.stats.member_stats(guild_id=1, user_id=2)
    # The connection was returned moments ago: no pre-ping. The stats statement runs in
    # autocommit: no BEGIN, no ROLLBACK around it.
    assert sent == []
    assert statements.count == 1


async def test_a_write_is_one_transaction(wire: tuple[App, list[str]]) -> None:
    app, sent = wire
    await app.guild_settings.get(1)  # warm the pool
    sent.clear()
    with count_statements(app.engine) as statements:
        async with app.sessionmaker() as session, session.begin():
            await session.execute(text("SELECT 1"))
    assert [q.split()[0] for q in sent] == ["BEGIN", "COMMIT;"]
    assert statements.count == 1


async def test_moving_to_the_next_question_is_one_statement_in_autocommit(
    wire: tuple[App, list[str]],
) -> None:
    app, sent = wire
    await app.bootstrap()  # the bundled bank, to play from
    view = await app.quiz.start(
        guild_id=1, guild_name="g", channel_id=2, user_id=3, display_name="p"
    )
    await app.quiz.set_message(view.session_id, 1)  # opens the writer's connection
    sent.clear()
    assert app.answer_engine is not None
    with (
        count_statements(app.engine) as statements,
        count_statements(app.answer_engine) as written,
    ):
        moved = await app.quiz.advance(view.session_id, view.position)
        await app.quiz.set_message(view.session_id, 12345)
    assert moved is not None and moved.position == view.position + 1
    # Two UPDATEs, each atomic on its own: no BEGIN, no COMMIT, no ping around them
    # (the only other statement reads the next question, a cache miss here). The
    # message's is written on the answer writer's connections.
    assert sent == []
    sql_sent = [sql.lstrip() for sql in statements.statements]
    updates = [sql for sql in sql_sent if sql.startswith("UPDATE quiz_sessions")]
    assert len(updates) == 1
    assert all(sql.startswith("SELECT") for sql in sql_sent if sql not in updates)
    assert [sql.split()[0] for sql in written.statements] == ["UPDATE"]


async def _bootstrapped_quiz(app: App, *, channel_id: int, count: int) -> QuestionView:
    """A solo quiz of `count` questions from the bundled bank, started by user 3."""
    await app.bootstrap()
    return await app.quiz.start(
        guild_id=1,
        guild_name="g",
        channel_id=channel_id,
        user_id=3,
        display_name="p",
        filters=QuizFilters(count=count),
    )


async def test_revealing_and_moving_on_is_one_statement_in_autocommit(
    wire: tuple[App, list[str]],
) -> None:
    app, sent = wire
    view = await _bootstrapped_quiz(app, channel_id=4, count=2)
    await app.quiz.question(view.question_id)
    sent.clear()
    with count_statements(app.engine) as statements:
        results, moved = await app.quiz.reveal_and_advance(
            view.session_id, view.question_id, view.position
        )
    assert results == [] and moved is not None and moved.position == view.position + 1
    assert sent == []
    sessions = [sql for sql in statements.statements if "quiz_sessions" in sql]
    assert len(sessions) == 1 and "json_agg" in sessions[0]
    # At the last question nothing moves, and no second read asks why.
    await app.quiz.question(moved.question_id)
    with count_statements(app.engine) as statements:
        assert await app.quiz.reveal_and_advance(
            view.session_id, moved.question_id, moved.position
        ) == ([], None)
    assert statements.count == 1 and sent == []


async def test_a_finish_is_three_statements_in_one_transaction(
    wire: tuple[App, list[str]],
) -> None:
    app, sent = wire
    view = await _bootstrapped_quiz(app, channel_id=5, count=1)
    question = await app.quiz.question(view.question_id)
    await app.quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=3,
        display_name="p",
        given=question.answer,
    )
    sent.clear()
    ran: list[str] = []
    driver.listen(app.engine, lambda sql, _arguments: ran.append(sql))
    with count_statements(app.engine) as statements:
        summary = await app.quiz.finish(view.session_id)
    assert [p.user_id for p in summary.players] == [3]
    # With their generic plans (FINISH_GENERIC_PLANS), set with the BEGIN: no round trip
    # more. Each statement is one whose generic plan test_generic_plans.py checks.
    assert ran[0] == driver.BEGIN_GENERIC_PLANS and ran[-1] == "COMMIT"
    checked = {app.read_connections.compiled(s).sql for s in FINISH_STATEMENTS}
    assert set(ran[1:-1]) <= checked
    # The end with the answers and their cards; the quiz counted for its players with
    # their new review cards and their achievements' progress; the awards. It was five
    # (the count, the progress and the cards apart), and seven before that (the
    # answers, the players' totals and the cards were read apart).
    # (The wire log also shows each new statement once, when it is prepared.)
    await asyncio.sleep(0)  # asyncpg hands queries to its loggers with call_soon
    control = [q.split()[0].rstrip(";") for q in sent]
    control = [q for q in control if q in ("BEGIN", "COMMIT", "ROLLBACK", "")]
    assert control == ["BEGIN", "COMMIT"]
    assert statements.count == 3


@pytest.mark.parametrize(
    "settings",
    [{"finish_generic_plans": False}, {"db_statement_cache_size": 0}, {"db_pgbouncer": True}],
)
async def test_a_finish_is_left_to_the_servers_plans_when_told_or_unprepared(
    database_url: str, settings: dict[str, Any]
) -> None:
    """Switched off, or where every run is planned anyway (statements prepared anew at
    each run), a quiz's end begins as any transaction."""
    app = _app(database_url, **settings)
    ran: list[str] = []
    driver.listen(app.engine, lambda sql, _arguments: ran.append(sql))
    try:
        view = await _bootstrapped_quiz(app, channel_id=6, count=1)
        ran.clear()
        await app.quiz.finish(view.session_id)
        assert ran[0] == driver.BEGIN and ran[-1] == "COMMIT"
    finally:
        await app.close()


# One pooled connection: the bootstrap opens every connection of the pool, and each
# learns the types it meets on first use (one introspection query, once).
@pytest.mark.parametrize("wire", [{"db_pool_size": 1}], indirect=True)
async def test_a_start_is_one_statement_in_autocommit(
    wire: tuple[App, list[str]],
) -> None:
    app, sent = wire
    await app.bootstrap(warm=True)
    # A first start warms the cached reads and the connection's type cache.
    await app.quiz.start(guild_id=71, guild_name="g", channel_id=70, user_id=70, display_name="o")
    await app.guild_settings.get(71)
    sent.clear()
    with count_statements(app.engine) as statements:
        # A user and member the database has never seen: the insert creates them.
        view = await app.quiz.start(
            guild_id=71, guild_name="g", channel_id=72, user_id=73, display_name="p"
        )
    # No BEGIN/COMMIT: one statement reads "recently seen", draws the questions and
    # creates the member and the session (atomic on its own). Nothing else: the
    # bootstrap memoised the bank's questions (no question read).
    assert sent == [], sent
    assert [sql.split()[0] for sql in statements.statements] == ["WITH"]
    async with app.read_sessionmaker() as session:
        member = (
            await session.execute(
                text(
                    "SELECT m.display_name, u.name, g.name FROM guild_members m "
                    "JOIN users u USING (user_id) JOIN guilds g USING (guild_id) "
                    "WHERE m.guild_id = 71 AND m.user_id = 73"
                )
            )
        ).one()
        session_row = (
            await session.execute(
                text("SELECT user_id, status FROM quiz_sessions WHERE id = :id"),
                {"id": view.session_id},
            )
        ).one()
    assert tuple(member) == ("p", "p", "g")
    assert tuple(session_row) == (73, "active")


async def test_a_batch_of_answers_is_two_statements_in_autocommit(
    wire: tuple[App, list[str]],
) -> None:
    app, sent = wire
    await app.bootstrap()
    view = await app.quiz.start(
        guild_id=81, guild_name="g", channel_id=82, user_id=83, display_name="p"
    )
    await app.quiz.answer(  # warms the answer writer's connection
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=83,
        display_name="p",
        given="x",
    )
    view = await app.quiz.advance(view.session_id, view.position)
    assert view is not None
    assert app.answer_engine is not None
    sent.clear()
    with count_statements(app.answer_engine) as statements:
        outcome = await app.quiz.answer(
            session_id=view.session_id,
            question_id=view.question_id,
            user_id=83,
            display_name="p",
            given="x",
        )
    assert outcome.recorded
    # The fast path: step 1 reads, step 3 checks and writes in one statement, each
    # committing on its own. No BEGIN, no COMMIT (a transaction would be four round trips).
    assert sent == []
    assert [sql.split()[0] for sql in statements.statements] == ["WITH", "WITH"]
    assert "FOR NO KEY UPDATE" not in statements.statements[0]
    assert "FOR NO KEY UPDATE" in statements.statements[1]


@pytest.mark.parametrize("wire", [{"answer_flushes": 1, "db_pool_timeout": 2}], indirect=True)
async def test_a_fast_batch_awards_on_its_own_connection(wire: tuple[App, list[str]]) -> None:
    # One batch in flight, so the writer has exactly one connection: the award after
    # the committed answers must not ask the pool for a second one.
    app, sent = wire
    await app.bootstrap()
    view = await app.quiz.start(
        guild_id=91, guild_name="g", channel_id=92, user_id=93, display_name="p"
    )
    assert app.answer_engine is not None
    right = (await app.quiz.question(view.question_id)).answer
    sent.clear()
    with count_statements(app.answer_engine) as statements:
        outcome = await app.quiz.answer(
            session_id=view.session_id,
            question_id=view.question_id,
            user_id=93,
            display_name="p",
            given=right,
        )
    assert outcome.recorded and outcome.correct
    assert outcome.achievements  # a first right answer earns one
    # Step 1, step 3 and the award, each committing on its own.
    assert [sql.split()[0] for sql in statements.statements] == ["WITH", "WITH", "WITH"]
    assert "INSERT INTO user_achievements" in statements.statements[2]
    # No BEGIN, no COMMIT (the writer's connection is new here: its set-up is logged).
    assert not [q for q in sent if q.split()[0] in ("BEGIN", "COMMIT", "COMMIT;")]


@pytest.mark.parametrize("wire", [{"db_ping_after_idle_s": 0.05}], indirect=True)
async def test_a_connection_idle_past_the_threshold_is_pinged_first(
    wire: tuple[App, list[str]],
) -> None:
    app, sent = wire
    await app.guild_settings.get(1)  # warm the pool
    await asyncio.sleep(0.1)
    sent.clear()
    await app.stats.member_stats(guild_id=1, user_id=2)
    # One bare ";" in autocommit (SQLAlchemy's own ping wraps it in BEGIN/ROLLBACK).
    assert sent == [";"]


@pytest.mark.parametrize("wire", [{"db_ping_after_idle_s": 0}], indirect=True)
async def test_ping_after_idle_zero_pings_at_every_checkout(wire: tuple[App, list[str]]) -> None:
    app, sent = wire
    await app.guild_settings.get(1)
    sent.clear()
    await app.stats.member_stats(guild_id=1, user_id=2)
    await app.cache.clear()
    await app.stats.member_stats(guild_id=1, user_id=2)
    assert sent == [";", ";"]


async def test_a_connection_killed_while_idle_is_replaced_by_the_ping(database_url: str) -> None:
    app = _app(database_url, db_ping_after_idle_s=0.05)
    try:
        async with app.read_sessionmaker() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        killer = await asyncpg.connect(**asyncpg_args(database_url))
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await killer.close()
        await asyncio.sleep(0.1)
        # The pooled connection is past the threshold: it is pinged, found dead and
        # replaced, and the unit of work succeeds.
        async with app.read_sessionmaker() as session:
            new_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid
    finally:
        await app.close()


async def test_the_bot_connections_run_without_jit(wire: tuple[App, list[str]]) -> None:
    app, _ = wire
    async with app.read_sessionmaker() as session:
        assert (await session.execute(text("SHOW jit"))).scalar() == "off"
        name = (await session.execute(text("SHOW application_name"))).scalar()
    assert name == "quizbot"


async def _question_ids(app: App, session_id: int) -> list[int]:
    async with app.read_sessionmaker() as session:
        ids = await session.scalar(
            text("SELECT question_ids FROM quiz_sessions WHERE id = :id"), {"id": session_id}
        )
    return list(ids)


def _question_reads(statements: list[str]) -> list[str]:
    """Reads of questions' content (not of a pool of ids)."""
    return [sql for sql in statements if "WHERE questions.id = ANY" in sql]


async def _five_question_quiz(app: App, member: int) -> QuestionView:
    """A solo quiz of five questions, started by `member` in a guild and channel of
    the same number."""
    return await app.quiz.start(
        guild_id=member,
        guild_name="g",
        channel_id=member,
        user_id=member,
        display_name="p",
        filters=QuizFilters(count=5),
    )


async def test_a_start_reads_its_quiz_s_questions_in_one_statement(database_url: str) -> None:
    seeding = _app(database_url)
    try:
        await seeding.bootstrap()  # the bundled bank
    finally:
        await seeding.close()
    app = _app(database_url)  # not bootstrapped: its question cache is empty
    try:
        with count_statements(app.engine) as statements:
            view = await _five_question_quiz(app, 81)
            ids = await _question_ids(app, view.session_id)
            questions = [await app.quiz.question(q) for q in ids]
        # One read for the five questions, at the start, not one per question shown.
        assert len(_question_reads(statements.statements)) == 1
        assert [q.id for q in questions] == ids and len(ids) == 5
    finally:
        await app.close()


async def test_the_bootstrap_opens_every_pooled_connection(database_url: str) -> None:
    """A bot's first burst finds its connections open: none is opened under load."""
    app = _app(database_url, db_pool_size=3, answer_flushes=2)
    try:
        assert app.engine.pool.checkedin() == 0  # type: ignore[attr-defined]
        await app.bootstrap(warm=True)
        pools = [app.engine.pool, app.answer_engine.pool]  # type: ignore[union-attr]
        # The answer writer's: one per answer batch and per message batch in flight, and
        # the pool refresh's spare.
        writers = 2 + MESSAGE_FLUSHES + WRITER_SPARE
        assert [p.checkedin() for p in pools] == [3, writers]  # type: ignore[attr-defined]
        # Every connection out at once was the start-up's doing: no saturation alert.
        assert [m.check() for m in app.pool_monitors] == [[], []]
        assert app.pool_monitor.metrics.peak_checked_out < 3  # the bootstrap's own reads
    finally:
        await app.close()


async def _pooled(engine: AsyncEngine) -> list[tuple[int, bool, set[str]]]:
    """Each pooled connection (all checked out at once): its server process, whether it
    is marked primed, and the statements prepared on it."""
    async with contextlib.AsyncExitStack() as held:
        size = engine.pool.size()  # type: ignore[attr-defined]
        connections = [await held.enter_async_context(engine.connect()) for _ in range(size)]
        pooled = []
        for connection in connections:
            fairy = await connection.get_raw_connection()
            raw = fairy.driver_connection
            rows = await raw.fetch("SELECT statement FROM pg_prepared_statements")
            pooled.append(
                (raw.get_server_pid(), bool(fairy.info.get(driver.PRIMED)), {r[0] for r in rows})
            )
    return pooled


async def test_the_bootstrap_prepares_the_hot_statements_on_every_connection(
    database_url: str,
) -> None:
    app = _app(database_url, db_pool_size=2, answer_flushes=2)
    try:
        await app.bootstrap(warm=True)
        for engine, connections, pool in (
            (app.engine, app.read_connections, driver.MAIN_POOL),
            (app.answer_engine, app.answer_connections, driver.ANSWER_POOL),
        ):
            assert engine is not None and connections is not None
            wanted = {connections.compiled(s).sql for s in driver.statements_at_start(pool)}
            assert wanted
            assert all(wanted <= statements for _pid, _primed, statements in await _pooled(engine))
    finally:
        await app.close()


@pytest.mark.parametrize(
    ("settings", "primes"),
    [
        ({}, True),
        ({"db_pgbouncer": True}, False),  # a pooled connection is no server process there
        ({"db_statement_cache_size": 0}, False),  # asyncpg would forget them
    ],
)
async def test_what_the_bootstrap_primes(
    database_url: str, monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any], primes: bool
) -> None:
    primed: list[tuple[Any, ...]] = []

    async def prime(self: Any, connection: Any, statements: Any) -> list[Any]:
        primed.append(tuple(statements))
        return []

    monkeypatch.setattr(driver.DriverConnections, "prime", prime)
    app = _app(database_url, db_pool_size=1, answer_flushes=1, **settings)
    try:
        await app.bootstrap(warm=True)
    finally:
        await app.close()
    assert app.primes_connections is primes
    if primes:
        # One connection of the main pool; the writer's: one answer flush, the messages',
        # the refresh's spare.
        assert primed == [
            driver.statements_at_start(driver.MAIN_POOL),
            *[driver.statements_at_start(driver.ANSWER_POOL)]
            * (1 + MESSAGE_FLUSHES + WRITER_SPARE),
        ]
    else:
        assert primed == []


async def test_a_statement_that_cannot_be_primed_is_logged_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = text("SELECT x FROM no_such_table WHERE x = :x")
    monkeypatch.setattr("quizbot.app.statements_at_start", lambda _pool: (broken,))
    app = _app(database_url, db_pool_size=2, answer_flushes=1)
    try:
        await app.bootstrap(warm=True)
    finally:
        await app.close()
    warnings = [r.getMessage() for r in caplog.records if "could not prepare" in r.getMessage()]
    assert len(warnings) == 2  # one per pool, not one per connection
    assert "on 2 of 2 connections of the main pool" in warnings[0]
    assert "no_such_table" in warnings[0]


async def test_the_hot_units_find_their_statements_prepared(database_url: str) -> None:
    """Everything a quiz, /stats and the boards run on the driver was prepared at start:
    the list given to `driver.prime_at_start` misses none of it."""
    app = _app(database_url, db_pool_size=1, answer_flushes=1)
    assert app.answer_engine is not None
    ran: dict[str, set[str]] = {driver.MAIN_POOL: set(), driver.ANSWER_POOL: set()}
    driver.listen(app.engine, lambda sql, _a: ran[driver.MAIN_POOL].add(sql))
    driver.listen(app.answer_engine, lambda sql, _a: ran[driver.ANSWER_POOL].add(sql))
    try:
        await app.bootstrap(warm=True)
        primed = {
            pool: {app.read_connections.compiled(s).sql for s in driver.statements_at_start(pool)}
            for pool in ran
        }
        # What the start-up itself ran (the question cache's warm-up) is no command's.
        for statements in ran.values():
            statements.clear()
        topic = (await app.quiz.topics(93))[0][0]
        # A channel quiz of two questions played to its end by two members.
        view: QuestionView | None = await app.quiz.start(
            guild_id=93,
            guild_name="g",
            channel_id=930,
            user_id=931,
            display_name="a",
            mode=SessionMode.CHANNEL,
            filters=QuizFilters(count=2),
        )
        session_id = view.session_id if view else 0
        while view is not None:
            await app.quiz.set_message(session_id, 9300 + view.position)
            question = await app.quiz.question(view.question_id)
            for member in (931, 932):
                await app.quiz.answer(
                    session_id=session_id,
                    question_id=view.question_id,
                    user_id=member,
                    display_name=str(member),
                    given=question.answer,
                )
            _results, view = await app.quiz.reveal_and_advance(
                session_id, view.question_id, view.position
            )
        assert (await app.quiz.finish(session_id)).players
        # A solo quiz of one topic, moved on by its player.
        solo = await app.quiz.start(
            guild_id=93,
            guild_name="g",
            channel_id=931,
            user_id=931,
            display_name="a",
            filters=QuizFilters(topic=topic, count=2),
        )
        await app.quiz.advance(solo.session_id, solo.position)
        # A review of the channel quiz's questions, once they are due.
        await app.review.start(
            guild_id=93,
            guild_name="g",
            channel_id=932,
            user_id=931,
            display_name="a",
            now=dt.datetime.now(dt.UTC) + dt.timedelta(days=3650),
        )
        await app.stats.member_stats(guild_id=93, user_id=931)
        for guild_id in (93, None):
            for period in Period:
                await app.stats.leaderboard(guild_id=guild_id, caller_id=931, period=period)
            await app.stats.leaderboard(guild_id=guild_id, caller_id=931, topic=topic)
        for pool in ran:
            statements = ran[pool] - driver.TRANSACTION_CONTROL
            assert statements, pool  # the flow above ran on both pools
            assert statements <= primed[pool], pool
    finally:
        await app.close()


async def test_callers_waiting_for_one_page_read_their_own_entries(database_url: str) -> None:
    # The first caller reads the page with its entry in one statement; the others,
    # waiting for that page, read their entries alone: each gets its own. (On the
    # memory cache: with Redis, a caller whose cache read came back after the page was
    # stored would read it from there, and one that missed just before would load.)
    app = _app(database_url)
    try:
        async with app.sessionmaker() as session, session.begin():
            factories.use_session(session)
            guild = GuildFactory(guild_id=96)
            for i, points in enumerate((50, 80, 50, 10, 0, 30)):
                user = UserFactory(user_id=9600 + i, points=points)
                GuildMemberFactory(guild=guild, user=user, points=points)
        factories.use_session(None)
        callers = range(9600, 9607)  # 9606 is no member
        with count_statements(app.engine) as statements:
            pages = await asyncio.gather(
                *(app.stats.leaderboard(guild_id=96, caller_id=c, limit=2) for c in callers)
            )
        assert [None if p.me is None else p.me.rank for p in pages] == [2, 1, 2, 5, None, 4, None]
        assert {tuple(p.entries) for p in pages} == {tuple(pages[0].entries)}
        # One page read (with its caller's entry) and six entries read alone.
        assert statements.count == 7
        assert sum("UNION ALL" in sql for sql in statements.statements) == 1
    finally:
        factories.use_session(None)
        await app.close()


async def test_the_pool_refresh_replaces_due_connections_and_primes_new_ones(
    database_url: str,
) -> None:
    """A connection due for recycling before the refresh after next is replaced in the
    background and primed; so is one the pool reconnected after an error; the others
    are left alone. In both pools."""
    app = _app(database_url, db_pool_size=3, answer_flushes=2)
    try:
        await app.bootstrap(warm=True)
        wanted = {
            app.read_connections.compiled(s).sql
            for s in driver.statements_at_start(driver.MAIN_POOL)
        }
        before = await _pooled(app.engine)
        assert all(primed and wanted <= statements for _pid, primed, statements in before)
        async with contextlib.AsyncExitStack() as held:
            due_soon, broken, later = [
                await (await held.enter_async_context(app.engine.connect())).get_raw_connection()
                for _ in range(3)
            ]
            due_soon.info[StaggeredRecycle.DUE] = time.monotonic() + 30
            later.info[StaggeredRecycle.DUE] = time.monotonic() + 120
            replaced = due_soon.driver_connection.get_server_pid()
            kept = later.driver_connection.get_server_pid()
            broken.invalidate()  # the pool reconnects it at its next checkout
        assert app.answer_engine is not None
        writer_wanted = {
            app.answer_connections.compiled(s).sql  # type: ignore[union-attr]
            for s in driver.statements_at_start(driver.ANSWER_POOL)
        }
        async with contextlib.AsyncExitStack() as held:
            writer = app.answer_engine
            writer_broken, writer_due = [
                await (await held.enter_async_context(writer.connect())).get_raw_connection()
                for _ in range(2)
            ]
            writer_broken.invalidate()
            writer_due.info[StaggeredRecycle.DUE] = time.monotonic() + 30
            writer_replaced = writer_due.driver_connection.get_server_pid()
        assert await app.refresh_pools(ahead_s=60) == 4
        after = await _pooled(app.engine)
        pids = {pid for pid, _primed, _statements in after}
        assert replaced not in pids and kept in pids and len(pids) == 3
        assert all(primed and wanted <= statements for _pid, primed, statements in after)
        writers = await _pooled(app.answer_engine)
        assert writer_replaced not in {pid for pid, _primed, _statements in writers}
        # answer_flushes=2, the messages' and the spare.
        writer_count = 2 + MESSAGE_FLUSHES + WRITER_SPARE
        assert len({pid for pid, _primed, _statements in writers}) == writer_count
        assert all(primed and writer_wanted <= s for _pid, primed, s in writers)
        assert await app.refresh_pools(ahead_s=60) == 0  # nothing left to do
    finally:
        await app.close()


async def test_the_writer_pool_refresh_never_makes_the_flushes_wait(database_url: str) -> None:
    """While the refresh replaces the writer's connections one by one, as many flushes
    as the committers may have in flight find a connection at once."""
    app = _app(database_url, db_pool_size=2, answer_flushes=2)
    try:
        await app.bootstrap(warm=True)
        writer = app.answer_engine
        assert writer is not None
        in_flight = 2 + MESSAGE_FLUSHES
        async with contextlib.AsyncExitStack() as held:
            for _ in range(in_flight + WRITER_SPARE):  # every one of them due
                connection = await held.enter_async_context(writer.connect())
                fairy = await connection.get_raw_connection()
                fairy.info[StaggeredRecycle.DUE] = time.monotonic() + 30
        metrics = writer.pool.metrics  # type: ignore[attr-defined]
        refresh = asyncio.ensure_future(app.refresh_pools(ahead_s=60))
        rounds = 0
        while not refresh.done():
            # The flushes' most at once, held together while the refresh goes on.
            async with contextlib.AsyncExitStack() as held:
                for _ in range(in_flight):
                    await held.enter_async_context(writer.connect())
                await asyncio.sleep(0.005)
            rounds += 1
        assert rounds > 0 and metrics.waits == 0
        # A connection held by a flush waits for a later round (or its own checkout).
        under_load = await refresh
        assert under_load >= 1
        assert under_load + await app.refresh_pools(ahead_s=60) == in_flight + WRITER_SPARE
    finally:
        await app.close()


async def _handed_out(app: App, count: int) -> list[int]:
    """The server processes of `count` reads made one after the other."""
    pids = []
    for _ in range(count):
        async with app.read_connections() as connection:
            pids.append(await connection.scalar(text("SELECT pg_backend_pid()")))
    return pids


@pytest.mark.parametrize("lifo", [True, False])
async def test_the_pool_hands_out_the_connection_returned_last_unless_told_otherwise(
    database_url: str, lifo: bool
) -> None:
    app = _app(database_url, db_pool_size=3, answer_flushes=1, db_pool_lifo=lifo)
    try:
        await app.bootstrap(warm=True)  # opens all three
        pids = await _handed_out(app, 6)
        # LIFO: one warm connection serves reads one after the other; FIFO: all in turn.
        assert len(set(pids)) == (1 if lifo else 3)
    finally:
        await app.close()


async def test_the_pool_refresh_visits_every_idle_connection_and_keeps_their_order(
    database_url: str,
) -> None:
    app = _app(database_url, db_pool_size=4, answer_flushes=1)
    try:
        await app.bootstrap(warm=True)
        async with contextlib.AsyncExitStack() as held:
            fairies = [
                await (await held.enter_async_context(app.engine.connect())).get_raw_connection()
                for _ in range(4)
            ]
            # All of them are due before the refresh after next.
            for fairy in fairies:
                fairy.info[StaggeredRecycle.DUE] = time.monotonic() + 30
            old = {fairy.driver_connection.get_server_pid() for fairy in fairies}
        # Each is taken longest idle first and put back on top: all four are replaced.
        assert await app.refresh_pools(ahead_s=60) == 4
        # `_pooled` takes them all, top of the pool first, and gives them back in order.
        order = [pid for pid, _primed, _statements in await _pooled(app.engine)]
        assert len(set(order) - old) == 4
        # A round that replaces nothing leaves every connection where it was.
        assert await app.refresh_pools(ahead_s=60) == 0
        assert [pid for pid, _primed, _statements in await _pooled(app.engine)] == order
    finally:
        await app.close()


async def test_the_monitor_refreshes_the_pools_on_its_interval(database_url: str) -> None:
    app = App.create(
        Settings(_env_file=None, redis_url=None, db_pool_size=2, db_pool_monitor_interval=0.2),  # type: ignore[call-arg]
        database_url,
        QuizCache(QuizCache.memory_backend()),
    )
    try:
        await app.bootstrap(warm=True)  # starts the monitor
        async with app.engine.connect() as connection:
            fairy = await connection.get_raw_connection()
            # Not past its life before the refresh replaces it (0.4 s ahead).
            fairy.info[StaggeredRecycle.DUE] = time.monotonic() + 0.3
            replaced = fairy.driver_connection.get_server_pid()
        metrics = app.engine.pool.metrics  # type: ignore[attr-defined]
        connects = metrics.connects
        for _ in range(100):  # watched without a checkout, which would recycle it itself
            if metrics.connects > connects:
                break
            await asyncio.sleep(0.05)
        pooled = await _pooled(app.engine)
        assert replaced not in {pid for pid, _primed, _statements in pooled}
        assert all(primed for _pid, primed, _statements in pooled)
    finally:
        await app.close()


def test_the_pool_refresh_looks_ahead_less_than_half_a_shortest_life() -> None:
    """Otherwise a replacement would be due at once (a checkout refuses twice at most)."""
    assert recycle_ahead_s(30, 1800) == 60  # two refreshes ahead
    assert recycle_ahead_s(30, 60) == 22.5  # lives of 45-60 s
    assert recycle_ahead_s(30, -1) == recycle_ahead_s(30, 0) == 60  # no recycling


async def test_the_pool_refresh_leaves_the_last_idle_connection_to_commands(
    database_url: str,
) -> None:
    app = _app(database_url, db_pool_size=2, answer_flushes=1)
    try:
        await app.bootstrap(warm=True)
        async with app.engine.connect() as command:  # a command holds one
            await command.execute(text("SELECT 1"))
            async with app.engine.connect() as other:
                (await other.get_raw_connection()).invalidate()
            assert await app.refresh_pools(ahead_s=60) == 0
        assert await app.refresh_pools(ahead_s=60) == 1
    finally:
        await app.close()


async def test_the_pool_refresh_waits_for_a_closed_breaker(database_url: str) -> None:
    app = _app(database_url, db_pool_size=2, answer_flushes=1, db_breaker_failures=1)
    try:
        await app.bootstrap(warm=True)
        async with app.engine.connect() as connection:
            (await connection.get_raw_connection()).invalidate()
        app.breaker.failure()  # the database went away
        assert app.breaker.state is not BreakerState.CLOSED
        assert await app.refresh_pools(ahead_s=60) == 0
    finally:
        await app.close()


async def test_the_bootstrap_fills_the_question_cache(database_url: str) -> None:
    app = _app(database_url)
    try:
        await app.bootstrap(warm=True)
        with count_statements(app.engine) as statements:
            view = await _five_question_quiz(app, 82)
            for q in await _question_ids(app, view.session_id):
                await app.quiz.question(q)
        assert _question_reads(statements.statements) == []
    finally:
        await app.close()
    # Without the cache (CACHE_ENABLED=false) nothing is memoised, so nothing is warmed.
    uncached = App.create(
        Settings(_env_file=None, redis_url=None, db_pool_monitor_interval=0),  # type: ignore[call-arg]
        database_url,
        QuizCache(QuizCache.memory_backend(), enabled=False),
    )
    try:
        assert await uncached.quiz.warm_question_cache() == 0
    finally:
        await uncached.close()


async def _quizzes(app: App, member: int, count: int) -> list[QuestionView]:
    """`count` solo quizzes of `member` (bank bootstrapped), each in a channel of its own."""
    await app.bootstrap()
    return [
        await app.quiz.start(
            guild_id=member,
            guild_name="g",
            channel_id=member * 1000 + i,
            user_id=member,
            display_name="p",
        )
        for i in range(count)
    ]


async def test_messages_posted_together_are_written_by_one_statement(
    wire: tuple[App, list[str]],
) -> None:
    app, sent = wire
    views = await _quizzes(app, 83, 20)
    twice = views[0].session_id
    await app.quiz.set_message(twice, 1)  # opens the writer's connection
    sent.clear()
    assert app.answer_engine is not None
    with (
        count_statements(app.engine) as statements,
        count_statements(app.answer_engine) as written,
    ):
        started = await asyncio.gather(
            *(app.quiz.set_message(v.session_id, 9000 + i) for i, v in enumerate(views)),
            app.quiz.set_message(twice, 8999),  # the same quiz again, later: it wins
            app.quiz.set_message(-1, 1),  # no such quiz
        )
    # The writer was idle, and every call came in the same turn of the loop: one batch,
    # one UPDATE in autocommit (no BEGIN, no COMMIT), on the answer writer's connections.
    assert len(written.statements) == 1 and statements.statements == [] and sent == []
    assert started[-1] is None
    assert all(s is not None for s in started[:-1])
    assert started[0] == started[-2]  # one clock start for the quiz named twice
    async with app.read_sessionmaker() as session:
        stored = dict(
            (
                await session.execute(
                    text("SELECT id, message_id FROM quiz_sessions WHERE id = ANY(:ids)"),
                    {"ids": [v.session_id for v in views]},
                )
            ).all()
        )
    expected = {v.session_id: 9000 + i for i, v in enumerate(views)} | {twice: 8999}
    assert stored == expected
    for view, when in zip(views, started, strict=False):
        current = await app.quiz.current(view.session_id)
        assert current is not None and current.started_at == when


async def test_a_start_whose_questions_cannot_be_read_ahead_still_starts(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeding = _app(database_url)
    try:
        await seeding.bootstrap()  # the bundled bank
    finally:
        await seeding.close()
    read = QuestionRepository.get_many

    async def one_at_a_time(self: QuestionRepository, ids: Sequence[int]) -> list[Any]:
        if len(ids) > 1:
            raise RuntimeError("the read ahead failed")
        return await read(self, ids)

    monkeypatch.setattr(QuestionRepository, "get_many", one_at_a_time)
    app = _app(database_url)  # not warmed: the start reads its questions ahead
    try:
        view = await _five_question_quiz(app, 85)
        # The quiz started (its insert committed) and its questions are read one by one.
        assert view.total == 5
        for q in await _question_ids(app, view.session_id):
            assert (await app.quiz.question(q)).id == q
    finally:
        await app.close()


async def test_a_failed_message_write_fails_every_caller_of_its_batch(
    wire: tuple[App, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = wire
    views = await _quizzes(app, 86, 3)

    async def broken(self: SessionRepository, messages: dict[int, int | None]) -> None:
        raise RuntimeError("the write failed")

    monkeypatch.setattr(SessionRepository, "set_messages", broken)
    results = await asyncio.gather(
        *(app.quiz.set_message(v.session_id, 1) for v in views), return_exceptions=True
    )
    assert [str(r) for r in results] == ["the write failed"] * 3  # nobody waits forever
    monkeypatch.undo()
    assert await app.quiz.set_message(views[0].session_id, 2) is not None  # it goes on


async def test_closing_writes_the_messages_still_queued(database_url: str) -> None:
    app = _app(database_url)
    try:
        await app.bootstrap()
        view = await app.quiz.start(
            guild_id=87, guild_name="g", channel_id=87, user_id=87, display_name="p"
        )
        queued = asyncio.ensure_future(app.quiz.set_message(view.session_id, 777))
        await asyncio.sleep(0)  # submitted; its write has not begun
        await app.quiz.close()
        assert queued.done() and queued.result() is not None
        async with app.read_sessionmaker() as session:
            stored = await session.scalar(
                text("SELECT message_id FROM quiz_sessions WHERE id = :id"),
                {"id": view.session_id},
            )
        assert stored == 777
    finally:
        await app.close()


@pytest.mark.parametrize(
    ("guild", "group_commit", "cache_enabled"),
    [(197, True, True), (198, False, True), (199, True, False)],
)
async def test_every_command_needs_one_pooled_connection_at_a_time(
    database_url: str, guild: int, group_commit: bool, cache_enabled: bool
) -> None:
    """A unit of work that took a second connection from the engine's pool while it
    held one (a cache miss loaded inside its transaction, say) would wait for itself
    once the pool is small and busy: with DB_POOL_SIZE=10 and ten such units at once,
    every one of them. On a pool of one, any such unit waits here, and times out.
    With the cache, it starts cold (a new quiz memoises its questions at its start);
    without it, every read goes to the database, wherever a command makes it."""
    app = _app(
        database_url,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=1.0,
        answer_group_commit=group_commit,
        cache_enabled=cache_enabled,
    )
    host, guest = guild * 10, guild * 10 + 1
    try:
        await app.bootstrap()  # not warm: no question memoised, no connection opened
        view: QuestionView | None = await app.quiz.start(
            guild_id=guild,
            guild_name="g",
            channel_id=guild,
            user_id=host,
            display_name="h",
            mode=SessionMode.CHANNEL,
            filters=QuizFilters(count=2),
        )
        assert view is not None
        session_id = view.session_id
        await app.quiz.set_message(session_id, guild)
        while view is not None:
            for user in (host, guest):
                await app.quiz.answer(
                    session_id=session_id,
                    question_id=view.question_id,
                    user_id=user,
                    display_name=str(user),
                    given=view.choices[0] if view.choices else "x",
                )
            await app.quiz.question(view.question_id)
            _, view = await app.quiz.reveal_and_advance(session_id, view.question_id, view.position)
        summary = await app.quiz.finish(session_id)
        assert summary.answered == 4
        await app.stats.member_stats(guild_id=guild, user_id=guest)
        for period in Period:
            await app.stats.leaderboard(guild_id=guild, caller_id=guest, period=period)
        await app.stats.leaderboard(guild_id=None, caller_id=guest)
        await app.review.due(guild_id=guild, user_id=guest)
        await app.guild_settings.update(guild, "g", {"timer": 25})
        metrics = app.pool_monitor.status().metrics
        assert (metrics.waits, metrics.timeouts) == (0, 0)  # one checkout at a time
        assert app.breaker.consecutive_failures == 0
    finally:
        await app.close()
