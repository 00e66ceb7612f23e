"""The points roll-ups (member_daily_points, member_period_points): every writer of
answers keeps them equal to the answers' sums per (guild, UTC day, member, topic) and
per (guild, week or month, member), and the period and topic boards read from them are
the boards the sums of answers gave."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from quizbot import models
from quizbot.cache import QuizCache
from quizbot.migrations import upgrade_on
from quizbot.models.guild import PERIOD_POINTS_FROM_DAYS_SQL
from quizbot.repositories import AchievementRepository, AnswerRepository
from quizbot.repositories.members import MEMBER_TOPICS_SQL
from quizbot.services.achievements import catalogue_rows
from quizbot.services.members import MemberService
from quizbot.services.quiz import AnswerOutcome, QuestionView, QuizFilters, QuizService
from quizbot.services.stats import (
    _PERIOD_SOURCE,
    _SOURCES,
    Period,
    StatsService,
    _me_sql,
    _page_sql,
    first_day,
    period_start,
)
from tests.daily_points import answer_roll_ups, roll_ups
from tests.database import create_database, drop_database, server_url
from tests.factories import (
    GuildFactory,
    GuildMemberFactory,
    QuestionFactory,
    QuizSessionFactory,
    UserFactory,
)

GUILD = 7_100_000_000_000_001
OTHER_GUILD = 7_100_000_000_000_002
CHANNELS = [7_100_000_000_000_100 + i for i in range(12)]
PLAYERS = [7_100_000_000_000_200 + i for i in range(6)]
TOPICS = ("Roll A", "Roll B")


@pytest.fixture(params=["Pacific/Kiritimati", "Etc/GMT+12"])
async def far_time_zone(request: pytest.FixtureRequest, connection: AsyncConnection) -> None:
    """The session's TimeZone 14 hours ahead of UTC, or 12 behind: at any hour of the
    day one of the two has another date than UTC, so a day taken in local time fails."""
    await connection.execute(text(f"SET TIME ZONE '{request.param}'"))


@pytest.fixture
async def bank(session: AsyncSession) -> None:
    await AchievementRepository(session=session).sync_catalogue(catalogue_rows())
    GuildFactory(guild_id=GUILD, name="Roll-up")
    GuildFactory(guild_id=OTHER_GUILD, name="Other")
    for topic in TOPICS:
        for i in range(3):
            QuestionFactory(topic=topic, category="c", prompt=f"{topic} {i}?")
    await session.commit()


def _service(sessionmaker: async_sessionmaker[AsyncSession], *, batch: int | None) -> QuizService:
    """`batch`: group commit of exactly that many answers; None: one by one."""
    return QuizService(
        sessionmaker,
        QuizCache(QuizCache.memory_backend()),
        rng=random.Random(7),
        answer_group_commit=batch is not None,
        answer_group_commit_ms=1e5,
        answer_batch_max=batch or 1,
    )


async def _quiz(quiz: QuizService, guild: int, channel: int, topic: str) -> QuestionView:
    return await quiz.start(
        guild_id=guild,
        guild_name="Roll-up",
        channel_id=channel,
        user_id=PLAYERS[0],
        display_name="host",
        mode=models.SessionMode.CHANNEL,
        filters=QuizFilters(topic=topic, count=3),
    )


async def _clicks(
    quiz: QuizService, plan: Sequence[tuple[QuestionView, int, str]]
) -> list[AnswerOutcome]:
    """Every (question, player, answer) of `plan`: all at once when the answers are
    group-committed, else one after the other (the tests' sessions share a connection)."""
    answers = [
        quiz.answer(
            session_id=view.session_id,
            question_id=view.question_id,
            user_id=user,
            display_name=f"p{user % 1000}",
            given=given,
        )
        for view, user, given in plan
    ]
    if quiz.answer_batcher is not None:
        return list(await asyncio.gather(*answers))
    return [await answer for answer in answers]


async def test_batches_and_one_by_one_answers_with_double_clicks_keep_the_roll_up(
    bank: None,
    far_time_zone: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rng = random.Random(5)
    batched = _service(sessionmaker, batch=24)
    one_by_one = _service(sessionmaker, batch=None)
    for quiz, guild, channels in (
        (batched, GUILD, CHANNELS[:4]),
        (one_by_one, OTHER_GUILD, CHANNELS[4:8]),
    ):
        # Two quizzes per topic: a member answers the same topic twice in one batch.
        views = [
            await _quiz(quiz, guild, channel, TOPICS[i % 2]) for i, channel in enumerate(channels)
        ]
        plan = [
            (view, user, rng.choice(["Alpha", "Alpha", "Beta"]))
            for view in views
            for user in PLAYERS
        ]
        plan = plan[:20] + rng.sample(plan[:20], 4)  # four double clicks
        rng.shuffle(plan)
        outcomes = await _clicks(quiz, plan)
        assert sum(o.recorded for o in outcomes) == 20
        assert sum(o.reason == "duplicate" for o in outcomes) == 4
    assert batched.answer_batcher is not None and batched.answer_batcher.stats.batches == 1
    rolled, periods = await roll_ups(session, [GUILD, OTHER_GUILD])
    assert (rolled, periods) == await answer_roll_ups(session, [GUILD, OTHER_GUILD])
    assert {kind for _g, kind, _s, _u in periods} == {"week", "month"}
    assert {topic for _g, _d, _u, topic in rolled} == set(TOPICS)
    assert {guild for guild, _d, _u, _t in rolled} == {GUILD, OTHER_GUILD}
    await batched.close()


@pytest.fixture(scope="module")
async def vacuumed() -> AsyncIterator[AsyncConnection]:
    """A database of its own with 90 days of two topics for six members in five guilds,
    vacuumed (as autovacuum leaves past days): its plans are the ones a server makes."""
    url = await create_database(server_url(), prefix="quizbot_plans")
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await upgrade_on(conn)
            for statement in (
                "INSERT INTO guilds (guild_id, name) SELECT g, 'g' FROM generate_series(1, 5) g",
                "INSERT INTO users (user_id, name) SELECT u, 'u' FROM generate_series(1, 6) u",
                "INSERT INTO guild_members (guild_id, user_id, display_name) "
                "SELECT g, u, 'u' FROM generate_series(1, 5) g, generate_series(1, 6) u",
                "INSERT INTO member_daily_points "
                "(guild_id, day, user_id, topic, points, answers, correct) "
                "SELECT g, DATE '2026-08-25' + d, u, t, d, 1, d % 2 FROM generate_series(1, 5) g, "
                "generate_series(0, 89) d, generate_series(1, 6) u, unnest(ARRAY['a', 'b']) t",
                PERIOD_POINTS_FROM_DAYS_SQL,
                "VACUUM ANALYZE",
            ):
                await conn.execute(text(statement))
            yield conn
    finally:
        await engine.dispose()
        await drop_database(url)


@pytest.mark.parametrize("topic", [None, "a"])
async def test_period_boards_read_the_window_from_the_roll_up_indexes(
    vacuumed: AsyncConnection, topic: str | None
) -> None:
    """A guild's board is its range of the primary key, the global board the window's
    range of the day index, both index-only; answers are not read."""
    params = {
        "guild_id": 1,
        "topic": topic,
        "since_day": dt.date(2026, 11, 16),  # the last week of the 90 days
        "after_points": None,
        "after_user": None,
        "limit": 11,
        "me": 3,
    }
    for scope, index in ((True, "pk_member_daily_points"), (False, "ix_member_daily_points_day")):
        source = _SOURCES[(scope, True)]
        for statement in (_page_sql(source), _me_sql(source)):
            explain = text("EXPLAIN " + statement.text)
            plan = "\n".join(r[0] for r in await vacuumed.execute(explain, params))
            assert f"Index Only Scan using {index} on member_daily_points" in plan, plan
            assert "Index Cond: " in plan and "day >= '2026-11-16'" in plan, plan
            assert "answers" not in plan, plan


async def test_a_members_topics_are_one_index_only_range(vacuumed: AsyncConnection) -> None:
    """/stats' per-topic accuracy and a quiz's end read the member's days from the
    member index, in topic order: grouped as they come, no sort."""
    topics = MEMBER_TOPICS_SQL.format(user_id=":user_id", guild_id=":guild_id")
    explain = text("EXPLAIN " + topics)
    plan = "\n".join(r[0] for r in await vacuumed.execute(explain, {"user_id": 3, "guild_id": 1}))
    assert "Index Only Scan using ix_member_daily_points_member_topics" in plan, plan
    assert "GroupAggregate" in plan and "Sort" not in plan, plan
    rows = await vacuumed.execute(text(topics), {"user_id": 3, "guild_id": 1})
    assert sorted(tuple(r) for r in rows) == [("a", 90, 45), ("b", 90, 45)]


async def test_weekly_and_monthly_guild_boards_are_ranges_of_one_index(
    vacuumed: AsyncConnection,
) -> None:
    """The page is the index's first rows in board order (no sum, no sort) and a rank
    is a count over the index range ahead of the member: no day is summed."""
    for period, since in (("week", dt.date(2026, 11, 16)), ("month", dt.date(2026, 11, 1))):
        params = {
            "guild_id": 1,
            "period": period,
            "since_day": since,
            "after_points": None,
            "after_user": None,
            "limit": 11,
            "me": 3,
        }
        for statement in (_page_sql(_PERIOD_SOURCE), _me_sql(_PERIOD_SOURCE)):
            explain = text("EXPLAIN " + statement.text)
            plan = "\n".join(r[0] for r in await vacuumed.execute(explain, params))
            assert "Index Only Scan using ix_member_period_points_board" in plan, plan
            assert "member_daily_points" not in plan and "Sort" not in plan, plan
            assert "HashAggregate" not in plan and "GroupAggregate" not in plan, plan


# The period and topic boards as quizbot computed them before the roll-up: the window's
# answers summed per member. The roll-up must give exactly these.
_FROM_ANSWERS = text(
    "SELECT a.user_id, sum(a.points) AS points FROM answers a "
    "WHERE (CAST(:guild_id AS bigint) IS NULL OR a.guild_id = :guild_id) "
    "AND a.answered_at >= :since AND (CAST(:topic AS text) IS NULL OR a.topic = :topic) "
    "GROUP BY a.user_id HAVING sum(a.points) > 0 ORDER BY points DESC, a.user_id"
)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATE_OWL = PLAYERS[5]  # answers only around midnight
Board = list[tuple[int, int, int]]  # (rank, user, points)


async def _from_answers(
    session: AsyncSession, guild_id: int | None, since: dt.datetime, topic: str | None
) -> Board:
    rows = await session.execute(
        _FROM_ANSWERS, {"guild_id": guild_id, "since": since, "topic": topic}
    )
    board: Board = []
    for position, (user, points) in enumerate(rows, start=1):
        tied = board and board[-1][2] == points
        board.append((board[-1][0] if tied else position, user, int(points)))
    return board


async def _paged(
    stats: StatsService, guild_id: int | None, period: Period, topic: str | None, now: dt.datetime
) -> Board:
    """The whole board, page after page (three rows each: keyset cursors across ties)."""
    board: Board = []
    after = None
    while True:
        page = await stats.leaderboard(
            guild_id=guild_id, period=period, topic=topic, after=after, limit=3, now=now
        )
        board += [(e.rank, e.user_id, e.points) for e in page.entries]
        if page.next_cursor is None:
            return board
        after = page.next_cursor


async def _boards(session: AsyncSession, stats: StatsService, now: dt.datetime) -> dict[Any, Board]:
    """Every period and topic board of both guilds and the global one, each checked
    against the answers (pages and every player's own rank)."""
    boards = {}
    for guild_id in (GUILD, OTHER_GUILD, None):
        for period in Period:
            for topic in (None, *TOPICS, "Nothing"):
                if period is Period.ALL and topic is None:
                    continue  # the all-time board reads the members' totals
                since = period_start(period, now) or EPOCH
                expected = await _from_answers(session, guild_id, since, topic)
                key = (guild_id, period, topic)
                assert await _paged(stats, guild_id, period, topic, now) == expected, key
                standing = {user: (rank, points) for rank, user, points in expected}
                for user in PLAYERS:
                    me = (
                        await stats.leaderboard(
                            guild_id=guild_id,
                            caller_id=user,
                            period=period,
                            topic=topic,
                            limit=1,
                            now=now,
                        )
                    ).me
                    assert (me and (me.rank, me.points)) == standing.get(user), (key, user)
                boards[key] = expected
    return boards


async def test_period_boards_from_the_roll_up_equal_the_sums_of_answers(
    bank: None,
    far_time_zone: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rng = random.Random(9)
    batched = _service(sessionmaker, batch=23)  # the 20 answers and 3 double clicks below
    one_by_one = _service(sessionmaker, batch=None)
    for quiz, guild, channels in (
        (batched, GUILD, CHANNELS[:4]),
        (one_by_one, OTHER_GUILD, CHANNELS[4:6]),
    ):
        views = [
            await _quiz(quiz, guild, channel, TOPICS[i % 2]) for i, channel in enumerate(channels)
        ]
        plan = [
            (view, user, rng.choice(["Alpha", "Alpha", "Beta"]))
            for view in views
            for user in PLAYERS[:5]
        ][:20]
        outcomes = await _clicks(quiz, plan + rng.sample(plan, 3))  # with double clicks
        assert sum(o.recorded for o in outcomes) == len(plan)
    assert batched.answer_batcher is not None and batched.answer_batcher.stats.batches == 1
    # Around midnight (UTC) and in earlier weeks and months, through the repository.
    now = dt.datetime.now(dt.UTC)
    midnight = period_start(Period.DAY, now)
    assert midnight is not None
    guild = await session.get(models.Guild, GUILD)
    owl = UserFactory(user_id=LATE_OWL, name="owl")
    GuildMemberFactory(guild=guild, user=owl)
    quiz_row = QuizSessionFactory(guild=guild, user=owl)
    answers = AnswerRepository(session=session)
    for points, topic, at in (
        (7, TOPICS[0], midnight - dt.timedelta(microseconds=1)),
        (11, TOPICS[0], midnight),
        (13, TOPICS[1], midnight - dt.timedelta(days=8)),
        (17, TOPICS[1], midnight - dt.timedelta(days=40)),
    ):
        question = QuestionFactory(topic=topic)
        await session.flush()
        await answers.record(
            session_id=quiz_row.id,
            question_id=question.id,
            user_id=LATE_OWL,
            guild_id=GUILD,
            topic=topic,
            given="Alpha",
            correct=True,
            response_ms=1,
            points=points,
            answered_at=at,
        )
    await session.commit()
    stats = StatsService(sessionmaker, QuizCache(QuizCache.memory_backend(), enabled=False))
    before = await _boards(session, stats, now)
    today = {user: points for _rank, user, points in before[(GUILD, Period.DAY, None)]}
    assert today[LATE_OWL] == 11  # a microsecond before midnight was yesterday
    assert len(today) > 3  # the players of the quizzes too

    # A reset empties the all-time board; the period boards keep counting the answers.
    members = MemberService(sessionmaker, QuizCache(QuizCache.memory_backend()))
    assert await members.reset_leaderboard(GUILD) > 0
    assert (await stats.leaderboard(guild_id=GUILD)).entries == ()
    assert await _boards(session, stats, now) == before

    # A deleted user leaves every board, and the roll-up, with their answers.
    gone = PLAYERS[2]
    assert await members.delete_user_data(gone)
    after = await _boards(session, stats, now)
    assert all(user != gone for board in after.values() for _r, user, _p in board)
    assert after != before
    rolled, periods = await roll_ups(session, [GUILD, OTHER_GUILD])
    assert (rolled, periods) == await answer_roll_ups(session, [GUILD, OTHER_GUILD])
    assert all(user != gone for _g, _d, user, _t in rolled)
    assert all(user != gone for _g, _k, _s, user in periods)
    await batched.close()


def test_a_window_covers_whole_utc_days() -> None:
    wednesday = dt.datetime(2026, 11, 25, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert first_day(period_start(Period.DAY, wednesday)) == dt.date(2026, 11, 26)  # UTC
    assert first_day(period_start(Period.WEEK, wednesday)) == dt.date(2026, 11, 23)
    assert first_day(None) == dt.date(1970, 1, 1)  # a topic board of all time
    with pytest.raises(ValueError, match="UTC midnight"):
        first_day(dt.datetime(2026, 11, 26, 0, 0, 1, tzinfo=dt.UTC))
