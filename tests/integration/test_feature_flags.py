"""The ablation switches (settings the benchmark flips): same results, other costs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from quizbot.cache import SCORES, QuizCache
from quizbot.config import Settings
from quizbot.observability import count_statements
from quizbot.repositories import MemberRepository
from quizbot.services.stats import StatsService
from tests.factories import (
    GuildFactory,
    GuildMemberFactory,
    MemberDayFactory,
    UserAchievementFactory,
    UserFactory,
)


async def _member(session: AsyncSession) -> tuple[int, int]:
    guild = GuildFactory()
    me = GuildMemberFactory(guild=guild, points=50, answered=3, correct=2)
    GuildMemberFactory(guild=guild, points=80)
    GuildMemberFactory(guild=guild, points=50, user=UserFactory(user_id=2))
    await session.flush()
    # Per-topic accuracy sums the days; two topics, one of them over two days.
    today = dt.datetime.now(dt.UTC).date()
    MemberDayFactory(member=me, topic="Physics", answers=1, correct=1)
    MemberDayFactory(member=me, topic="Physics", day=today - dt.timedelta(days=1), correct=0)
    MemberDayFactory(member=me, topic="History", answers=3, correct=2)
    now = dt.datetime.now(dt.UTC)
    for i in range(3):
        UserAchievementFactory(user=me.user, guild=guild, earned_at=now - dt.timedelta(minutes=i))
    await session.flush()
    return guild.guild_id, me.user.user_id


async def test_stats_by_parts_equal_the_single_statement(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    guild_id, user_id = await _member(session)
    repo = MemberRepository(session=session)
    with count_statements(connection) as one:
        single = await repo.stats(guild_id=guild_id, user_id=user_id)
    with count_statements(connection) as parts:
        by_parts = await repo.stats_by_parts(guild_id=guild_id, user_id=user_id)
    assert (one.count, parts.count) == (1, 6)
    assert by_parts == single
    assert [(t.topic, t.answered, t.correct) for t in single.topics] == [
        ("History", 3, 2),
        ("Physics", 2, 1),
    ]
    # A stranger: zeros either way, and no rank query.
    stranger = await repo.stats_by_parts(guild_id=guild_id, user_id=999)
    assert stranger == await repo.stats(guild_id=guild_id, user_id=999)


@pytest.mark.parametrize("single", [True, False])
async def test_stats_service_switch(
    single: bool,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
) -> None:
    guild_id, user_id = await _member(session)
    await session.commit()
    stats = StatsService(
        sessionmaker, QuizCache(QuizCache.memory_backend()), stats_single_statement=single
    )
    with count_statements(connection) as log:
        result = await stats.member_stats(guild_id=guild_id, user_id=user_id)
    assert log.count == (1 if single else 6)
    # 80 ahead, a tie at 50 shares rank 2 (competition ranking, as on the leaderboard).
    assert result.rank == 2 and result.members == 3


async def test_cache_disabled_reads_the_database_every_time_and_stays_fresh(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
) -> None:
    guild_id, user_id = await _member(session)
    await session.commit()
    cache = QuizCache(QuizCache.memory_backend(), enabled=False)
    stats = StatsService(sessionmaker, cache)
    with count_statements(connection) as log:
        await stats.member_stats(guild_id=guild_id, user_id=user_id)
        await stats.leaderboard(guild_id=guild_id)
        await stats.member_stats(guild_id=guild_id, user_id=user_id)
        await stats.leaderboard(guild_id=guild_id)
    assert log.count == 4  # nothing memoized
    await MemberRepository(session=session).add_points(
        guild_id=guild_id, user_id=user_id, points=100
    )
    await session.commit()
    await cache.invalidate(SCORES, guild_id)  # still safe to call; bumps the generation
    assert (await stats.member_stats(guild_id=guild_id, user_id=user_id)).points == 150
    assert await cache.backend.get(f"gen:{SCORES}:{guild_id}") == 1


async def test_cache_enabled_memoizes() -> None:
    assert QuizCache.from_settings(Settings(cache_enabled=True)).enabled
    assert not QuizCache.from_settings(Settings(cache_enabled=False)).enabled


def test_ablation_settings_have_the_benchmark_names_and_defaults() -> None:
    settings = Settings()
    assert settings.answer_group_commit is True
    assert 2 <= settings.answer_group_commit_ms <= 5
    assert settings.cache_enabled is True
    assert settings.stats_single_statement is True
    assert settings.db_statement_cache_size > 0
    overridden = Settings(
        answer_group_commit=False,
        answer_group_commit_ms=0,
        cache_enabled=False,
        stats_single_statement=False,
        db_statement_cache_size=0,
    )
    assert not overridden.answer_group_commit and overridden.db_statement_cache_size == 0
