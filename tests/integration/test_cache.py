"""The cache on Redis, as several bot processes share it: counters, pickled values,
invalidation seen by every process, and a clear that spares other applications' keys."""

from __future__ import annotations

import redis.asyncio

from quizbot.cache import QUESTIONS, SCORES, QuizCache, create_cache
from quizbot.config import Settings
from quizbot.repositories.members import MemberStats
from quizbot.services.stats import Entry


async def test_an_invalidation_in_one_process_is_seen_by_another(
    redis_cache: QuizCache, redis_url: str
) -> None:
    other = QuizCache(
        create_cache(Settings(redis_url=redis_url), namespace=redis_cache.backend.namespace)
    )
    try:
        assert await redis_cache.generation(SCORES, 42) == 0
        await other.invalidate(SCORES, 42)
        await other.invalidate(SCORES, 42)
        assert await redis_cache.generation(SCORES, 42) == 2
        assert await redis_cache.generations(SCORES, [42, 43]) == [2, 0]
        # The global boards sum every guild's scores: a guild's change reaches them too.
        assert await redis_cache.generation(SCORES, None) == 2
        # A guild's own questions leave the shared bank's generation alone.
        await other.invalidate(QUESTIONS, 42)
        assert await redis_cache.generations(QUESTIONS, [42, 0]) == [1, 0]
    finally:
        await other.close()


async def test_memoized_values_round_trip_and_follow_the_generation(
    redis_cache: QuizCache,
) -> None:
    calls: list[int] = []

    async def load(guild_id: int, gen: int) -> tuple[Entry, ...]:
        calls.append(gen)
        return (Entry(1, 7, "ann", 100 + gen),)

    memo = redis_cache.memoize("board", load, ttl=60)
    gen = await redis_cache.generation(SCORES, 5)
    first = await memo(5, gen)
    again = await memo(5, gen)
    assert first == again == (Entry(1, 7, "ann", 100),)
    assert calls == [0]  # the second read came from Redis, unpickled
    await redis_cache.invalidate(SCORES, 5)
    fresh = await memo(5, await redis_cache.generation(SCORES, 5))
    assert fresh == (Entry(1, 7, "ann", 101),)
    assert calls == [0, 1]


async def test_none_is_not_cached(redis_cache: QuizCache) -> None:
    calls: list[int] = []

    async def load(key: int) -> MemberStats | None:
        calls.append(key)
        return None

    memo = redis_cache.memoize("maybe", load, ttl=60)
    assert await memo(1) is None
    assert await memo(1) is None
    assert calls == [1, 1]


async def test_clear_spares_keys_of_other_applications(
    redis_cache: QuizCache, redis_url: str
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.set("someone-else:key", b"keep me")
        await redis_cache.invalidate(SCORES, 9)
        await redis_cache.clear()
        assert await redis_cache.generation(SCORES, 9) == 0
        assert await client.get("someone-else:key") == b"keep me"
    finally:
        await client.delete("someone-else:key")
        await client.aclose()


def test_redis_url_parts_reach_the_client() -> None:
    backend = create_cache(Settings(redis_url="rediss://:s%40cret@cache.example:6380/3"))
    assert (backend.endpoint, backend.port, backend.db) == ("cache.example", 6380, 3)
    assert backend.password == "s@cret"
