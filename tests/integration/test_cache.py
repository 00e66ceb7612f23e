"""The cache on Redis, as several bot processes share it: counters, pickled values,
invalidation seen by every process, and a clear that spares other applications' keys."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
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


@pytest.fixture(params=["memory", "redis"])
def either_cache(request: pytest.FixtureRequest) -> QuizCache:
    if request.param == "memory":
        return QuizCache(QuizCache.memory_backend())
    cache: QuizCache = request.getfixturevalue("redis_cache")
    return cache


def _count_writes(cache: QuizCache) -> list[str]:
    """The keys the cache's backend is asked to write, in order."""
    written: list[str] = []
    write = cache.backend.set

    async def counted(key: str, value: Any, **kwargs: Any) -> Any:
        written.append(key)
        return await write(key, value, **kwargs)

    cache.backend.set = counted
    return written


async def _all_waiting() -> None:
    # Every caller of a herd has read the cache (a Redis round trip) and joined the load.
    await asyncio.sleep(0.2)


async def test_concurrent_misses_of_one_key_share_one_load_and_one_write(
    either_cache: QuizCache,
) -> None:
    calls: list[int] = []
    release = asyncio.Event()
    written = _count_writes(either_cache)

    async def load(guild_id: int) -> tuple[int, ...]:
        calls.append(guild_id)
        await release.wait()
        return (guild_id, 1, 2)

    memo = either_cache.memoize("pool", load, ttl=60)
    herd = [asyncio.ensure_future(memo(guild_id)) for guild_id in (7, 7, 7, 8, 7, 8)]
    await _all_waiting()
    assert sorted(calls) == [7, 8]  # one load per key, not one per caller
    release.set()
    results = await asyncio.gather(*herd)
    assert results == [(7, 1, 2)] * 3 + [(8, 1, 2), (7, 1, 2), (8, 1, 2)]
    assert sorted(written) == ["pool:7", "pool:8"]  # and one write per key
    assert await memo(7) == (7, 1, 2) and sorted(calls) == [7, 8]  # now from the cache


async def test_a_failed_shared_load_reaches_every_caller_and_is_not_kept(
    either_cache: QuizCache,
) -> None:
    calls = 0
    release = asyncio.Event()

    async def load(key: int) -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        if calls == 1:
            raise ConnectionError("database went away")
        return key * 10

    memo = either_cache.memoize("flaky", load, ttl=60)
    herd = [asyncio.ensure_future(memo(3)) for _ in range(4)]
    await _all_waiting()
    release.set()
    outcomes = await asyncio.gather(*herd, return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes) and calls == 1
    assert await memo(3) == 30 and calls == 2  # the next command loads again


async def test_cancelled_callers_leave_the_shared_load_running_and_its_value_kept(
    either_cache: QuizCache,
) -> None:
    calls = 0
    started = asyncio.Event()
    release = asyncio.Event()

    async def load(key: int) -> int:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return key + 1

    memo = either_cache.memoize("slow", load, ttl=60)
    first = asyncio.ensure_future(memo(1))
    await started.wait()  # the first caller's load is under way
    second = asyncio.ensure_future(memo(1))
    await _all_waiting()
    first.cancel()  # the command that began the load timed out
    release.set()
    assert await second == 2 and calls == 1
    assert first.cancelled()
    # When every caller gave up, the load still finishes and keeps its value.
    release.clear()
    gone = [asyncio.ensure_future(memo(5)) for _ in range(3)]
    await _all_waiting()
    for caller in gone:
        caller.cancel()
    release.set()
    await asyncio.gather(*gone, return_exceptions=True)
    await _all_waiting()
    assert await memo(5) == 6 and calls == 2


def test_redis_url_parts_reach_the_client() -> None:
    backend = create_cache(Settings(redis_url="rediss://:s%40cret@cache.example:6380/3"))
    assert (backend.endpoint, backend.port, backend.db) == ("cache.example", 6380, 3)
    assert backend.password == "s@cret"
