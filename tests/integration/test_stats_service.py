"""Leaderboards and stats: ties, keyset pages, periods, own rank, cache invalidation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from quizbot import models
from quizbot.cache import SCORES, QuizCache
from quizbot.errors import InvalidInputError
from quizbot.models import QuizSession
from quizbot.observability import count_statements
from quizbot.repositories import AnswerRepository, MemberRepository
from quizbot.services.stats import (
    Cursor,
    LeaderboardPage,
    Period,
    PointsHistogram,
    StatsService,
    period_start,
)
from tests.factories import (
    GuildFactory,
    GuildMemberFactory,
    QuestionFactory,
    QuizSessionFactory,
    UserFactory,
)

POINTS = [50, 80, 50, 50, 10, 0, 30, 80]


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> QuizCache:
    """Every stats test runs on both backends: in-process memory and a shared Redis."""
    if request.param == "redis":
        redis_cache: QuizCache = request.getfixturevalue("redis_cache")
        return redis_cache
    return QuizCache(QuizCache.memory_backend())


@pytest.fixture
async def board(session: AsyncSession) -> int:
    guild = GuildFactory()
    for i, points in enumerate(POINTS):
        GuildMemberFactory(
            guild=guild,
            user=UserFactory(user_id=1000 + i, name=f"m{i}", points=points),
            points=points,
        )
    await session.commit()
    return guild.guild_id


def stats_service(sessionmaker: async_sessionmaker[AsyncSession], cache: QuizCache) -> StatsService:
    return StatsService(sessionmaker, cache)


async def test_top_n_with_ties_and_keyset_pages(
    board: int, sessionmaker: async_sessionmaker[AsyncSession], cache: QuizCache
) -> None:
    stats = stats_service(sessionmaker, cache)
    seen = []
    after = None
    for _ in range(5):
        page = await stats.leaderboard(guild_id=board, limit=3, after=after)
        seen += [(e.rank, e.user_id, e.points) for e in page.entries]
        if page.next_cursor is None:
            break
        after = Cursor.decode(page.next_cursor.encode())
    # Competition ranking, ties broken by id, members with no points left out.
    assert seen == [
        (1, 1001, 80),
        (1, 1007, 80),
        (3, 1000, 50),
        (3, 1002, 50),
        (3, 1003, 50),
        (6, 1006, 30),
        (7, 1004, 10),
    ]


async def test_own_rank_wherever_the_caller_stands(
    board: int, sessionmaker: async_sessionmaker[AsyncSession], cache: QuizCache
) -> None:
    stats = stats_service(sessionmaker, cache)
    page = await stats.leaderboard(guild_id=board, caller_id=1003, limit=2)
    assert page.me is not None and (page.me.rank, page.me.points) == (3, 50)
    nobody = await stats.leaderboard(guild_id=board, caller_id=1005, limit=2)
    assert nobody.me is None  # no points yet: not on the board


# Points of this week's right answers (topic "General") for some members of `board`:
# ties, and a member whose all-time rank differs from their week's.
WEEK_POINTS = {1000: 30, 1001: 50, 1002: 30, 1003: 10, 1006: 50, 1007: 20}


async def test_a_page_and_the_callers_entry_are_one_statement_and_as_read_apart(
    board: int,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
) -> None:
    now = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)  # a Wednesday
    guild = await session.get(models.Guild, board)
    for user_id, points in WEEK_POINTS.items():
        user = await session.get(models.User, user_id)
        quiz = QuizSessionFactory(guild=guild, user=user)
        await _right_answer(session, quiz, points, now - dt.timedelta(hours=1))
    await session.commit()
    # Without the cache every call reads its page. The reference: the page read alone
    # (a call without a caller), and the own line read alone.
    uncached = stats_service(sessionmaker, QuizCache(QuizCache.memory_backend(), enabled=False))
    cached = stats_service(sessionmaker, QuizCache(QuizCache.memory_backend()))
    boards: list[dict[str, Any]] = [
        {"guild_id": board},  # the kept histogram's rank
        {"guild_id": None},  # users
        {"guild_id": board, "period": Period.WEEK},  # the week's kept sums
        {"guild_id": board, "period": Period.DAY},  # the days' roll-up
        {"guild_id": board, "topic": "General"},
        {"guild_id": None, "period": Period.WEEK},  # every guild's days
        {"guild_id": None, "topic": "General"},
    ]
    ranked = 0
    for where in boards:
        since = period_start(where.get("period", Period.ALL), now)
        after = None
        for _page in range(4):
            for caller in (1001, 1003, 1004, 1005, 999):  # top, middle, last, no points, none
                with count_statements(connection) as together:
                    page = await uncached.leaderboard(
                        **where, caller_id=caller, limit=2, after=after, now=now
                    )
                assert together.count == 1, where
                apart = await uncached.leaderboard(**where, limit=2, after=after, now=now)
                alone = await uncached._my_counted_entry(
                    where["guild_id"], caller, where.get("period", Period.ALL),
                    where.get("topic"), since,
                )  # fmt: skip
                assert (page.entries, page.next_cursor) == (apart.entries, apart.next_cursor)
                assert page.me == alone, (where, caller)
                ranked += page.me is not None
            if page.next_cursor is None:
                break
            after = page.next_cursor
    assert ranked > 40  # every board has callers on it, on every page
    # A page found in the cache costs the own line alone.
    await cached.leaderboard(guild_id=board, limit=2, now=now)
    with count_statements(connection) as line_alone:
        me = (await cached.leaderboard(guild_id=board, caller_id=1003, limit=2, now=now)).me
    assert line_alone.count == 1
    assert me is not None and (me.rank, me.user_id, me.points) == (3, 1003, 50)
    week = await uncached.leaderboard(guild_id=board, caller_id=1003, period=Period.WEEK, now=now)
    assert week.me is not None and (week.me.rank, week.me.points) == (6, 10)


async def test_global_board_reads_users(
    board: int, sessionmaker: async_sessionmaker[AsyncSession], cache: QuizCache
) -> None:
    page = await stats_service(sessionmaker, cache).leaderboard(guild_id=None, limit=2)
    assert [e.points for e in page.entries] == [80, 80]


async def _right_answer(
    session: AsyncSession, quiz: QuizSession, points: int, at: dt.datetime
) -> None:
    """A right answer to a new question of `quiz`, through the repository: the answer
    and its day's points are written together."""
    question = QuestionFactory()
    await session.flush()
    await AnswerRepository(session=session).record(
        session_id=quiz.id,
        question_id=question.id,
        user_id=quiz.user_id,
        guild_id=quiz.guild_id,
        topic=question.topic,
        given="Alpha",
        correct=True,
        response_ms=1500,
        points=points,
        answered_at=at,
    )


async def test_period_and_topic_boards_sum_answers_in_the_window(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], cache: QuizCache
) -> None:
    now = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)  # a Wednesday
    guild = GuildFactory()
    a, b = UserFactory(name="ann"), UserFactory(name="ben")
    GuildMemberFactory(guild=guild, user=a)
    GuildMemberFactory(guild=guild, user=b)
    qa, qb = QuizSessionFactory(guild=guild, user=a), QuizSessionFactory(guild=guild, user=b)
    await session.flush()
    for quiz, points, ago in (
        (qa, 100, dt.timedelta(hours=1)),
        (qa, 500, dt.timedelta(days=20)),
        (qb, 70, dt.timedelta(days=1)),
    ):
        await _right_answer(session, quiz, points, now - ago)
    await session.commit()
    stats = stats_service(sessionmaker, cache)

    async def board(period: Period, topic: str | None = None) -> list[tuple[str, int]]:
        page = await stats.leaderboard(guild_id=guild.guild_id, period=period, topic=topic, now=now)
        return [(e.name, e.points) for e in page.entries]

    assert await board(Period.DAY) == [("ann", 100)]
    assert await board(Period.WEEK) == [("ann", 100), ("ben", 70)]
    assert await board(Period.MONTH) == [("ann", 600), ("ben", 70)]
    assert await board(Period.MONTH, topic="Nothing") == []


async def test_leaderboard_is_cached_until_a_score_changes(
    board: int,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    connection: AsyncConnection,
    cache: QuizCache,
) -> None:
    stats = stats_service(sessionmaker, cache)
    await stats.leaderboard(guild_id=board)
    with count_statements(connection) as log:
        cached = await stats.leaderboard(guild_id=board)
    assert log.count == 0
    await MemberRepository(session=session).add_points(guild_id=board, user_id=1004, points=500)
    await session.commit()
    await cache.invalidate(SCORES, board)
    fresh = await stats.leaderboard(guild_id=board)
    assert cached.entries[0].user_id == 1001
    assert (fresh.entries[0].user_id, fresh.entries[0].points) == (1004, 510)


async def test_global_board_is_invalidated_by_a_score_change_in_any_guild(
    board: int,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    cache: QuizCache,
) -> None:
    """The global board sums every guild: a guild's score change makes it stale too."""
    stats = stats_service(sessionmaker, cache)
    cached = await stats.leaderboard(guild_id=None, limit=1)
    assert cached.entries[0].user_id == 1001
    await session.execute(text("UPDATE users SET points = points + 500 WHERE user_id = 1004"))
    await session.commit()
    await cache.invalidate(SCORES, board)  # what every writer of scores calls after commit
    fresh = await stats.leaderboard(guild_id=None, limit=1)
    assert (fresh.entries[0].user_id, fresh.entries[0].points) == (1004, 510)


async def test_global_boards_of_a_window_are_read_on_a_clock(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
    cache: QuizCache,
) -> None:
    """Summed from every guild's days and moved by any answer anywhere, a global board
    of a window is read at most once per refresh: its page and a caller's own line
    (even a caller without points) come from the cache for the rest of the slot,
    whatever the scores did, and own ranks from one histogram of the slot that every
    caller shares. The next slot sums again. A guild's boards and the global all-time
    board stay as of the last score change."""
    now = dt.datetime(2026, 11, 25, 12, 0, 30, tzinfo=dt.UTC)  # slot 12:00:00-12:01:00
    ann, ben = UserFactory(name="ann"), UserFactory(name="ben")
    quizzes = {}
    for user in (ann, ben):  # in guilds of their own: only the global board has both
        guild = GuildFactory()
        GuildMemberFactory(guild=guild, user=user)
        quizzes[user.user_id] = QuizSessionFactory(guild=guild, user=user)
    await session.flush()

    async def answer(user_id: int, points: int) -> None:
        quiz = quizzes[user_id]
        await _right_answer(session, quiz, points, now)
        await MemberRepository(session=session).add_points(
            guild_id=quiz.guild_id, user_id=user_id, points=points
        )
        await session.execute(
            text("UPDATE users SET points = points + :p WHERE user_id = :u"),
            {"p": points, "u": user_id},
        )
        await session.commit()
        await cache.invalidate(SCORES, quiz.guild_id)  # as every writer of scores does

    stats = StatsService(sessionmaker, cache, global_board_refresh_s=60)

    async def week(caller: int, at: dt.datetime, guild_id: int | None = None) -> LeaderboardPage:
        return await stats.leaderboard(
            guild_id=guild_id, period=Period.WEEK, caller_id=caller, now=at
        )

    def line(page: LeaderboardPage) -> tuple[int, int] | None:
        return None if page.me is None else (page.me.rank, page.me.points)

    await answer(ann.user_id, 100)
    await answer(ben.user_id, 120)
    first = await week(ann.user_id, now)
    assert [(e.name, e.points) for e in first.entries] == [("ben", 120), ("ann", 100)]
    assert line(first) == (2, 100) and first.refresh_s == 60
    assert (await week(42, now)).me is None  # no points this week

    await answer(ann.user_id, 50)  # ann is ahead now, but not before the next slot
    later = now + dt.timedelta(seconds=29)
    with count_statements(connection) as log:
        same, outsider = await week(ann.user_id, later), await week(42, later)
    assert log.count == 0
    assert same.entries == first.entries and line(same) == (2, 100) and outsider.me is None
    with count_statements(connection) as log:  # a new caller: their row, not the window
        assert line(await week(ben.user_id, later)) == (1, 120)
    assert log.count == 1 and "GROUP BY b.points" not in log.statements[0]

    fresh = await week(ann.user_id, now + dt.timedelta(seconds=30))
    assert [e.points for e in fresh.entries] == [150, 120] and line(fresh) == (1, 150)
    live = await week(ann.user_id, later, guild_id=quizzes[ann.user_id].guild_id)
    assert live.refresh_s == 0 and line(live) == (1, 150)
    all_time = await stats.leaderboard(guild_id=None, caller_id=ann.user_id, now=later)
    assert all_time.refresh_s == 0 and line(all_time) == (1, 150)


async def test_without_the_cache_no_board_claims_a_refresh(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """CACHE_ENABLED=false: every call sums, so the board does not say "updated every
    minute"."""
    uncached = QuizCache(QuizCache.memory_backend(), enabled=False)
    stats = StatsService(sessionmaker, uncached, global_board_refresh_s=60)
    page = await stats.leaderboard(guild_id=None, period=Period.WEEK)
    assert page.refresh_s == 0


def test_a_points_histogram_ranks_like_the_board() -> None:
    """Competition ranks: equal points, equal rank; the next rank counts everyone ahead."""
    histogram = PointsHistogram.of([(10, 1), (50, 3), (80, 2)])
    assert [histogram.rank(p) for p in (90, 80, 79, 50, 10, 5)] == [1, 1, 3, 3, 6, 7]
    assert PointsHistogram.of([]).rank(1) == 1


async def test_stats_for_a_newcomer(
    board: int, sessionmaker: async_sessionmaker[AsyncSession], cache: QuizCache
) -> None:
    stats = await stats_service(sessionmaker, cache).member_stats(guild_id=board, user_id=1)
    assert stats.points == 0 and stats.rank is None and stats.topics == []


async def test_page_size_is_bounded(
    sessionmaker: async_sessionmaker[AsyncSession], cache: QuizCache
) -> None:
    with pytest.raises(InvalidInputError):
        await stats_service(sessionmaker, cache).leaderboard(guild_id=1, limit=100)
    with pytest.raises(InvalidInputError):
        Cursor.decode("not-a-cursor")
