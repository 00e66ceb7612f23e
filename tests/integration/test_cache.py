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


# Set while no backend read of an `either_cache` is under way (`_track_reads`), by
# the cache's id.
_NO_READS: dict[int, asyncio.Event] = {}


def _track_reads(cache: QuizCache) -> QuizCache:
    """Follow the backend's reads in flight, for `_all_waiting`."""
    in_flight = 0
    idle = asyncio.Event()
    idle.set()
    read = cache.backend.get

    async def tracked(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight
        in_flight += 1
        idle.clear()
        try:
            return await read(*args, **kwargs)
        finally:
            in_flight -= 1
            if not in_flight:
                idle.set()

    cache.backend.get = tracked
    _NO_READS[id(cache)] = idle
    return cache


@pytest.fixture(params=["memory", "redis"])
def either_cache(request: pytest.FixtureRequest) -> QuizCache:
    if request.param == "memory":
        return _track_reads(QuizCache(QuizCache.memory_backend()))
    cache: QuizCache = request.getfixturevalue("redis_cache")
    return _track_reads(cache)


def _count_writes(cache: QuizCache) -> list[str]:
    """The keys the cache's backend is asked to write, in order."""
    written: list[str] = []
    write = cache.backend.set

    async def counted(key: str, value: Any, **kwargs: Any) -> Any:
        written.append(key)
        return await write(key, value, **kwargs)

    cache.backend.set = counted
    return written


async def _all_waiting(cache: QuizCache) -> None:
    """Every caller of a herd has read the cache (a Redis round trip) and joined the load.

    A fixed 0.2 s was once too short in CI: the herd's first reads open the Redis
    pool's connections. So after it, wait (up to 10 s) for the reads still under way,
    then for what their replies wake up.
    """
    await asyncio.sleep(0.2)
    await asyncio.wait_for(_NO_READS[id(cache)].wait(), timeout=10)
    await asyncio.sleep(0.05)


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
    await _all_waiting(either_cache)
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
    await _all_waiting(either_cache)
    release.set()
    outcomes = await asyncio.gather(*herd, return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes) and calls == 1
    assert await memo(3) == 30 and calls == 2  # the next command loads again


async def test_a_miss_takes_no_turn_of_the_event_loop_of_its_own() -> None:
    # The load runs in the caller's task: no task to start and none to wake the caller
    # from. Two turns each cost a wait behind every callback ready to run; with 100
    # tasks taking turns, a miss took 280-290 us with them and 15 us without
    # (2026-12-07). Counted here in turns of a task that yields at every turn.
    cache = QuizCache(QuizCache.memory_backend())  # the memory backend never waits

    async def load(key: int) -> tuple[int]:
        return (key,)

    memo = cache.memoize("turns", load, ttl=60)
    turns = 0
    stop = False

    async def turn() -> None:
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    turner = asyncio.ensure_future(turn())
    await asyncio.sleep(0)
    before = turns
    for key in range(20):
        assert await memo(key) == (key,)  # a miss, loaded and stored
    assert await memo(3) == (3,)  # a hit
    assert turns == before
    stop = True
    await turner


async def test_a_cancelled_loader_hands_the_load_to_a_waiting_caller(
    either_cache: QuizCache,
) -> None:
    calls: list[asyncio.Task[Any] | None] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def load(key: int) -> int:
        calls.append(asyncio.current_task())  # the load runs in its caller's task
        started.set()
        await release.wait()
        return key + 1

    memo = either_cache.memoize("slow", load, ttl=60)
    first = asyncio.ensure_future(memo(1))
    await started.wait()  # the first caller's load is under way
    assert calls == [first]
    waiting = [asyncio.ensure_future(memo(1)) for _ in range(3)]
    await _all_waiting(either_cache)
    waiting[0].cancel()  # a waiting caller gives up: nothing else changes
    await _all_waiting(either_cache)
    assert len(calls) == 1
    first.cancel()  # the command that began the load timed out
    await _all_waiting(either_cache)
    # One of those still waiting loads (the first to have asked: with Redis, the order
    # of the replies to their cache reads).
    assert len(calls) == 2 and calls[1] in (waiting[1], waiting[2])
    release.set()
    assert await asyncio.gather(waiting[1], waiting[2]) == [2, 2]
    assert first.cancelled() and waiting[0].cancelled()
    assert await memo(1) == 2 and len(calls) == 2  # kept by the caller that loaded it
    # When every caller gave up, nothing is loaded or kept: the next caller loads.
    release.clear()
    gone = [asyncio.ensure_future(memo(5)) for _ in range(3)]
    await _all_waiting(either_cache)
    for caller in gone:
        caller.cancel()
    await asyncio.gather(*gone, return_exceptions=True)
    assert len(calls) == 3
    release.set()
    assert await memo(5) == 6 and len(calls) == 4


async def test_a_caller_that_comes_while_the_value_is_stored_does_not_load_again(
    either_cache: QuizCache,
) -> None:
    calls = 0
    storing = asyncio.Event()
    stored = asyncio.Event()
    write = either_cache.backend.set

    async def slow_write(key: str, value: Any, **kwargs: Any) -> Any:
        storing.set()
        await stored.wait()
        return await write(key, value, **kwargs)

    either_cache.backend.set = slow_write

    async def load(key: int) -> int:
        nonlocal calls
        calls += 1
        return key * 2

    memo = either_cache.memoize("storing", load, ttl=60)
    first = asyncio.ensure_future(memo(4))
    await storing.wait()  # loaded, and on its way to the backend
    assert await memo(4) == 8 and calls == 1  # the loaded value, not a second load
    stored.set()
    assert await first == 8 and calls == 1


def test_redis_url_parts_reach_the_client() -> None:
    backend = create_cache(Settings(redis_url="rediss://:s%40cret@cache.example:6380/3"))
    assert (backend.endpoint, backend.port, backend.db) == ("cache.example", 6380, 3)
    assert backend.password == "s@cret"
