"""Own rank from the Redis mirror: the same answer as counting in SQL, kept up by writes,
dropped when points go down."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from quizbot.cache import QuizCache
from quizbot.observability import count_statements
from quizbot.rank_mirror import RankMirror
from quizbot.repositories import AchievementRepository
from quizbot.services.achievements import catalogue_rows
from quizbot.services.members import MemberService
from quizbot.services.quiz import QuizFilters, QuizService
from quizbot.services.stats import StatsService
from tests.factories import GuildFactory, GuildMemberFactory, QuestionFactory, UserFactory

POINTS = [50, 80, 50, 50, 10, 0, 30, 80, 5, 50]
FIRST_USER = 7_100_000_000_000_000


@pytest.fixture
async def guild(session: AsyncSession) -> int:
    g = GuildFactory()
    for i, points in enumerate(POINTS):
        user = UserFactory(user_id=FIRST_USER + i, name=f"u{i}", points=points)
        GuildMemberFactory(guild=g, user=user, points=points, display_name=f"m{i}")
    await session.commit()
    return g.guild_id


@pytest.fixture
async def mirror(
    redis_cache: QuizCache, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[RankMirror]:
    m = RankMirror(
        redis_cache.redis,
        sessionmaker,
        min_members=3,
        min_totals=1,
        ttl_s=600,
        namespace=redis_cache.backend.namespace,
    )
    yield m
    await m.close()


async def _own_ranks(stats: StatsService, guild_id: int) -> list[tuple[int, int] | None]:
    ranks = []
    for i in range(len(POINTS)):
        page = await stats.leaderboard(guild_id=guild_id, caller_id=FIRST_USER + i)
        ranks.append(None if page.me is None else (page.me.rank, page.me.points))
    return ranks


async def test_mirrored_ranks_equal_counted_ranks_and_skip_the_count(
    guild: int,
    mirror: RankMirror,
    redis_cache: QuizCache,
    sessionmaker: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
) -> None:
    counted = await _own_ranks(StatsService(sessionmaker, redis_cache), guild)
    # Competition ranking, ties share a rank, no points: unranked.
    assert counted[:6] == [(3, 50), (1, 80), (3, 50), (3, 50), (8, 10), None]
    assert await mirror.build(guild)
    assert await mirror.ready(guild)
    mirrored_stats = StatsService(sessionmaker, redis_cache, rank_mirror=mirror)
    with count_statements(connection) as statements:
        mirrored = await _own_ranks(mirrored_stats, guild)
    assert mirrored == counted
    # The rank came from Redis: no statement counted the rows ahead.
    assert statements.count > 0
    assert not any("count(*)" in sql for sql in statements.statements)


async def test_writes_keep_it_current_and_a_late_lower_total_changes_nothing(
    guild: int, mirror: RankMirror
) -> None:
    assert await mirror.build(guild)
    climber = FIRST_USER + 4  # 10 points, 8th
    await mirror.points_changed([(guild, climber, 90)])
    assert await mirror.rank(guild, 90) == 1
    # An older total arriving late (another process, a slow write) cannot lower it.
    await mirror.points_changed([(guild, climber, 40)])
    assert await mirror.rank(guild, 80) == 2  # the climber is still ahead of the 80s


async def test_guilds_without_a_mirror_are_not_written(
    guild: int, mirror: RankMirror, redis_cache: QuizCache
) -> None:
    await mirror.points_changed([(guild, FIRST_USER, 500)])
    assert redis_cache.redis is not None
    assert await redis_cache.redis.exists(mirror._zset(guild)) == 0
    assert await mirror.rank(guild, 500) is None
    assert not await mirror.ready(guild)


async def test_a_deep_counted_rank_builds_the_mirror_in_the_background(
    guild: int,
    mirror: RankMirror,
    redis_cache: QuizCache,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    stats = StatsService(sessionmaker, redis_cache, rank_mirror=mirror)
    top = await stats.leaderboard(guild_id=guild, caller_id=FIRST_USER + 1)
    assert top.me is not None and top.me.rank == 1  # shallower than min_members: no build
    await mirror.wait_for_builds()
    assert await redis_cache.redis.get(mirror._state(guild)) is None  # type: ignore[union-attr]
    deep = await stats.leaderboard(guild_id=guild, caller_id=FIRST_USER + 8)
    assert deep.me is not None and deep.me.rank == 9
    await mirror.wait_for_builds()
    assert await redis_cache.redis.get(mirror._state(guild)) == b"ready"  # type: ignore[union-attr]
    assert await mirror.rank(guild, 5) == 9


async def test_a_guild_with_few_distinct_totals_is_left_to_its_histogram(
    guild: int,
    redis_cache: QuizCache,
    sessionmaker: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
) -> None:
    # POINTS hold five distinct totals above zero: 80, 50, 30, 10 and 5.
    def mirror_of(min_totals: int) -> RankMirror:
        return RankMirror(
            redis_cache.redis,
            sessionmaker,
            min_members=3,
            min_totals=min_totals,
            ttl_s=600,
            namespace=redis_cache.backend.namespace,
        )

    def counts_totals(sql: str) -> bool:
        return "SELECT 1 FROM guild_points_histogram" in sql

    sparse = mirror_of(6)
    try:
        assert not await sparse.needed(guild)
        stats = StatsService(sessionmaker, redis_cache, rank_mirror=sparse)
        with count_statements(connection) as looked:
            deep = await stats.leaderboard(guild_id=guild, caller_id=FIRST_USER + 8)
            await sparse.wait_for_builds()
        assert deep.me is not None and deep.me.rank == 9  # deep enough to look
        assert sum(map(counts_totals, looked.statements)) == 1
        assert await redis_cache.redis.get(sparse._state(guild)) is None  # type: ignore[union-attr]
        # Found not to need a mirror: the next deep rank does not count the totals again.
        with count_statements(connection) as again:
            await stats.member_stats(guild_id=guild, user_id=FIRST_USER + 8)
            await sparse.wait_for_builds()
        assert again.count == 1 and not any(map(counts_totals, again.statements))
    finally:
        await sparse.close()
    enough = mirror_of(5)
    try:
        assert await enough.needed(guild)
        assert await enough.build_if_needed(guild)
        assert await enough.rank(guild, 5) == 9
    finally:
        await enough.close()


async def test_a_reset_drops_the_mirror_and_ranks_are_counted_again(
    guild: int,
    mirror: RankMirror,
    redis_cache: QuizCache,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    assert await mirror.build(guild)
    members = MemberService(sessionmaker, redis_cache, rank_mirror=mirror)
    await members.reset_leaderboard(guild)
    assert await mirror.rank(guild, 0) is None
    stats = StatsService(sessionmaker, redis_cache, rank_mirror=mirror)
    page = await stats.leaderboard(guild_id=guild, caller_id=FIRST_USER + 1)
    assert page.me is None  # no points any more: unranked, not a stale rank 1


async def test_a_second_build_of_the_same_guild_does_not_start(
    guild: int, mirror: RankMirror
) -> None:
    assert await mirror.build(guild)
    assert not await mirror.build(guild)  # ready: owned until it expires or is dropped


async def test_answers_written_in_batches_update_the_mirror(
    guild: int,
    mirror: RankMirror,
    redis_cache: QuizCache,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await AchievementRepository(session=session).sync_catalogue(catalogue_rows())
    for i in range(3):
        QuestionFactory(topic="Mirror", category="c", prompt=f"Mirror {i}?")
    await session.commit()
    assert await mirror.build(guild)
    quiz = QuizService(
        sessionmaker,
        redis_cache,
        rng=random.Random(1),
        answer_group_commit_ms=1,
        rank_mirror=mirror,
    )
    player = FIRST_USER + 5  # 0 points: not in the mirror yet
    view = await quiz.start(
        guild_id=guild,
        guild_name="g",
        channel_id=7_100_000_000_000_900,
        user_id=player,
        display_name="m5",
        filters=QuizFilters(topic="Mirror"),
    )
    question = await quiz.question(view.question_id)
    outcome = await quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=player,
        display_name="m5",
        given=question.answer,
    )
    await quiz.close()
    assert outcome.recorded and outcome.points > 0
    stored = await session.scalar(
        text("SELECT points FROM guild_members WHERE guild_id = :g AND user_id = :u"),
        {"g": guild, "u": player},
    )
    assert stored == outcome.total_points
    score = await redis_cache.redis.zscore(mirror._zset(guild), str(player))  # type: ignore[union-attr]
    assert score == stored


async def test_stats_of_a_mirrored_guild_take_rank_and_size_from_the_mirror(
    guild: int,
    mirror: RankMirror,
    redis_cache: QuizCache,
    sessionmaker: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
) -> None:
    counted = [
        await StatsService(sessionmaker, redis_cache).member_stats(
            guild_id=guild, user_id=FIRST_USER + i
        )
        for i in range(len(POINTS))
    ]
    await redis_cache.clear()
    assert await mirror.build(guild)
    stats = StatsService(sessionmaker, redis_cache, rank_mirror=mirror)
    with count_statements(connection) as statements:
        mirrored = [
            await stats.member_stats(guild_id=guild, user_id=FIRST_USER + i)
            for i in range(len(POINTS))
        ]
    assert mirrored == counted
    assert [s.rank for s in mirrored][:6] == [3, 1, 3, 3, 8, None]
    assert {s.members for s in mirrored} == {9}
    assert not any("count(*) + 1" in sql for sql in statements.statements)


async def test_one_call_writes_several_guilds_and_large_batches(
    guild: int, mirror: RankMirror, redis_cache: QuizCache, session: AsyncSession
) -> None:
    other = GuildFactory()
    GuildMemberFactory(guild=other, user=UserFactory(user_id=FIRST_USER + 99), points=7)
    unmirrored = GuildFactory()
    await session.commit()
    assert await mirror.build(guild)
    assert await mirror.build(other.guild_id)
    newcomers = [(guild, FIRST_USER + 1000 + i, 1 + i % 40) for i in range(1500)]
    await mirror.points_changed(
        [*newcomers, (other.guild_id, FIRST_USER + 99, 9), (unmirrored.guild_id, 1, 5)]
    )
    redis = redis_cache.redis
    assert redis is not None
    # 1,500 members are 3,000 values: more than one ZADD inside the script.
    assert await redis.zcard(mirror._zset(guild)) == len(POINTS) - 1 + 1500
    assert await redis.zscore(mirror._zset(other.guild_id), str(FIRST_USER + 99)) == 9
    assert await redis.exists(mirror._zset(unmirrored.guild_id)) == 0
    assert await redis.ttl(mirror._zset(guild)) > 0


async def test_a_failed_build_gives_the_guild_back_and_is_not_retried_at_once(
    guild: int, redis_cache: QuizCache
) -> None:
    def broken() -> AsyncSession:
        raise RuntimeError("the database went away")

    mirror = RankMirror(
        redis_cache.redis,
        broken,  # type: ignore[arg-type]
        min_members=1,
        min_totals=1,
        ttl_s=600,
        namespace=redis_cache.backend.namespace,
    )
    mirror.ranked(guild, 5)
    await mirror.wait_for_builds()
    redis = redis_cache.redis
    assert redis is not None
    assert await redis.exists(mirror._state(guild)) == 0  # released: another may build
    mirror.ranked(guild, 5)
    assert not mirror._builds  # and this process waits before trying again


async def test_the_set_outlives_its_state_and_an_empty_set_is_never_read(
    guild: int, mirror: RankMirror, redis_cache: QuizCache
) -> None:
    redis = redis_cache.redis
    assert redis is not None
    assert await mirror.build(guild)
    await mirror.points_changed([(guild, FIRST_USER, 60)])
    state_ms = await redis.pttl(mirror._state(guild))
    assert await redis.pttl(mirror._zset(guild)) > state_ms + 50_000  # a margin, not rounding
    # Should the set still vanish first, "ready" over an empty set means count instead.
    await redis.delete(mirror._zset(guild))
    assert await mirror.standing(guild, 50) is None


async def test_a_chunk_of_a_build_that_lost_its_guild_is_not_written(
    guild: int, mirror: RankMirror, redis_cache: QuizCache
) -> None:
    redis = redis_cache.redis
    assert redis is not None
    keys = [mirror._state(guild), mirror._zset(guild)]
    assert await mirror._start(keys=keys, args=["old", 60])  # build A, pre-reset snapshot
    await mirror.drop(guild)  # a reset
    assert await mirror._start(keys=keys, args=["new", 60])  # build B
    assert await mirror._chunk(keys=keys, args=["new", 10, FIRST_USER])
    # A's late chunk (a higher, pre-reset total) must not land in B's set.
    assert not await mirror._chunk(keys=keys, args=["old", 500, FIRST_USER])
    assert await redis.zscore(mirror._zset(guild), str(FIRST_USER)) == 10


async def test_a_reset_drops_the_mirror_even_when_the_cache_fails(
    guild: int,
    mirror: RankMirror,
    redis_cache: QuizCache,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await mirror.build(guild)

    async def unreachable(*_args: object) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr(redis_cache, "invalidate", unreachable)
    members = MemberService(sessionmaker, redis_cache, rank_mirror=mirror)
    assert await members.reset_leaderboard(guild) == len(POINTS) - 1  # committed, no error
    assert not await mirror.ready(guild)
