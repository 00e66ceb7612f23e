"""aiocache wiring: one cache per process, key builders, and invalidation after commit.

Reads that are hot and change rarely (question pools, questions, guild settings)
and reads that are hot and change often (leaderboards, stats) are memoized in an
aiocache backend (`QuizCache.memoize`). Invalidation is by *generation*: every key embeds
a per-guild counter that a committed write bumps. A reader that raced a writer
stores its (old) result under the old generation, where nobody looks again, so a
stale value can never outlive the commit that made it stale. TTLs only bound memory.

Concurrent misses of one key share one load (`_Memoized`): after a restart, or
when a generation moves, the first burst of commands would otherwise send the same
read once per command (the benchmark's cold start sent one question-pool read per
start, twenty per guild, each holding a pooled connection).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import aiocache
from aiocache.serializers import PickleSerializer

from quizbot.config import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

# What a generation counter is about.
QUESTIONS = "q"  # a guild's question pool (or the shared bank: guild 0)
SCORES = "s"  # points, streaks, achievements: leaderboards and stats
SETTINGS = "cfg"  # a guild's settings

SHARED_BANK = 0
NAMESPACE = "quizbot"


def create_cache(settings: Settings, namespace: str = NAMESPACE) -> Any:
    """Redis when REDIS_URL is set (shared by every bot process), else in-process memory."""
    if settings.redis_url:
        url = urllib.parse.urlparse(settings.redis_url)
        # Built by hand rather than with Cache.from_url: that knows neither rediss:// (TLS)
        # nor a password in the URL.
        return aiocache.RedisCache(
            serializer=PickleSerializer(),
            namespace=namespace,
            endpoint=url.hostname or "127.0.0.1",
            port=url.port or 6379,
            db=int(url.path.strip("/") or 0),
            password=urllib.parse.unquote(url.password) if url.password else None,
            ssl=url.scheme == "rediss",
        )
    return memory_cache(namespace)


def memory_cache(namespace: str = NAMESPACE) -> Any:
    """An in-process aiocache backend without a timeout.

    aiocache runs every operation under `asyncio.wait_for(op, timeout)` (5 s by default),
    which creates a task and costs an extra turn of the event loop per cache read. A
    dictionary lookup cannot hang, so the memory backend goes without; Redis keeps it.
    """
    return aiocache.Cache(aiocache.Cache.MEMORY, namespace=namespace, timeout=None)


def _counter(value: Any) -> int:
    """A generation counter as stored by INCR: raw bytes in Redis, an int in memory.

    Read without the pickle serializer, which cannot load what INCR wrote.
    """
    return 0 if value is None else int(value)


def _key_from_args(prefix: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [str(a) for a in args] + [f"{k}={v}" for k, v in sorted(kwargs.items())]
    return prefix + ":" + ":".join(parts)


class _Load:
    """One key's load in flight: the callers waiting for it, and its value once loaded."""

    __slots__ = ("landed", "value", "waiters")

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[Any]] = []
        self.value: Any = None
        self.landed = False  # loaded; the value may still be on its way to the backend

    def settle(self, *, value: Any = None, error: BaseException | None = None) -> None:
        """Hand the value, or the error, to every caller still waiting."""
        for waiter in self.waiters:
            if waiter.done():  # that caller was cancelled
                continue
            if error is None:
                waiter.set_result(value)
            else:
                waiter.set_exception(error)
        self.waiters.clear()


class _TakeOver(Exception):
    """The caller that was loading a key was cancelled: a waiting caller loads it."""


class _Memoized(Generic[T]):
    """`fn` memoized in an aiocache backend, one load per key at a time.

    A hit is one `get`. On a miss the first caller loads (`fn`, then one `set`) in the
    caller's own task, and every caller that misses the same key meanwhile waits for it:

    - its value, or its exception (the same exception object for every caller), reaches
      each of them; the value as soon as it is loaded, before it is stored;
    - the key is free again only once the value is stored (a caller that comes while it
      is being stored gets the value without loading);
    - a waiting caller that is cancelled stops waiting and nothing else; when the
      loading caller is cancelled, its load stops with it and the first caller still
      waiting loads instead (with its own loader, for `load_with`).

    Nothing in the bot cancels a command mid-read but its shutdown: a statement that
    times out (`DB_COMMAND_TIMEOUT`) raises an error, which reaches every waiter. Were
    commands cancelled on a deadline shorter than a load, each waiter would start the
    load again in turn and none would store it; a load in a task of its own (as here
    before 2026-12-07) would finish once.

    The load runs in the first caller's task rather than in one of its own: a task
    costs two more turns of the event loop (its start, and the caller's wake-up at its
    end), and under load each turn is a wait behind every callback ready to run. Failures
    of the cache itself are logged and read as a miss, as aiocache's `cached` decorator
    does, so a Redis outage only costs database reads.
    """

    def __init__(
        self, backend: Any, prefix: str, fn: Callable[..., Awaitable[T]], ttl: int
    ) -> None:
        self._backend = backend
        self._prefix = prefix
        self._fn = fn
        self._ttl = ttl
        self._in_flight: dict[str, _Load] = {}

    async def __call__(self, *args: Any, **kwargs: Any) -> T:
        return await self.load_with(functools.partial(self._fn, *args, **kwargs), *args, **kwargs)

    async def load_with(self, load: Callable[[], Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """As a call with these arguments, but a miss here is loaded by `load`, which
        returns what `fn` would (a caller that reads more in the same round trip).

        A caller that finds the value cached, or gets it from another caller's load,
        does not call `load`; one that takes a load over from a cancelled loader does.
        """
        key = _key_from_args(self._prefix, args, kwargs)
        try:
            value: T | None = await self._backend.get(key)
        except Exception:
            log.exception("could not read %s from the cache", key)
            value = None
        if value is not None:
            return value
        while (pending := self._in_flight.get(key)) is not None:
            if pending.landed:
                loaded: T = pending.value
                return loaded
            waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            pending.waiters.append(waiter)
            try:
                return await waiter
            except _TakeOver:
                continue  # its loader was cancelled: load it here, unless another did
        return await self._load(key, load)

    async def _load(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        load = _Load()
        self._in_flight[key] = load
        try:
            try:
                value = await fn()
            except Exception as error:
                load.settle(error=error)
                raise
            except BaseException:
                load.settle(error=_TakeOver())
                raise
            load.value, load.landed = value, True
            load.settle(value=value)
            if value is not None:  # None is never stored: it reads as a miss
                try:
                    await self._backend.set(key, value, ttl=self._ttl)
                except Exception:
                    log.exception("could not keep %s in the cache", key)
            return value
        finally:
            if self._in_flight.get(key) is load:
                del self._in_flight[key]


class _NotMemoized(Generic[T]):
    """`fn` called through, with `_Memoized`'s interface (the cache disabled)."""

    def __init__(self, fn: Callable[..., Awaitable[T]]) -> None:
        self._fn = fn

    async def __call__(self, *args: Any, **kwargs: Any) -> T:
        return await self._fn(*args, **kwargs)

    async def load_with(self, load: Callable[[], Awaitable[T]], *_args: Any, **_kwargs: Any) -> T:
        """`load()`: nothing is memoized."""
        return await load()


Memoized = _Memoized[T] | _NotMemoized[T]


class QuizCache:
    """The process's cache and its invalidation rules."""

    def __init__(self, backend: Any, *, enabled: bool = True) -> None:
        self.backend = backend
        # Disabled (CACHE_ENABLED=false): memoized reads call straight through to the
        # database; `invalidate` still bumps generations, so other processes sharing
        # a Redis backend with the cache on never serve what this one made stale.
        self.enabled = enabled

    @staticmethod
    def memory_backend() -> Any:
        """A fresh in-process backend (tests, the terminal game)."""
        return memory_cache()

    @classmethod
    def from_settings(cls, settings: Settings) -> QuizCache:
        """Build the cache the settings ask for."""
        return cls(create_cache(settings), enabled=settings.cache_enabled)

    def memoize(self, prefix: str, fn: Callable[..., Awaitable[T]], *, ttl: int) -> Memoized[T]:
        """Memoize `fn` in the aiocache backend; the key is `prefix` plus the call's
        arguments.

        Callers put a generation (see `generation`) among the arguments. `None`
        results are not stored. Concurrent misses of one key in this process share
        one load and one write (`_Memoized`; a load is begun again only when its caller
        is cancelled). With the cache disabled, every call calls `fn`.
        """
        if not self.enabled:
            return _NotMemoized(fn)
        return _Memoized(self.backend, prefix, fn, ttl)

    @property
    def redis(self) -> Any | None:
        """The Redis client behind the cache (`redis.asyncio.Redis`), None in memory."""
        return self.backend.client if isinstance(self.backend, aiocache.RedisCache) else None

    async def generation(self, kind: str, guild_id: int | None) -> int:
        """The current generation of what `kind` covers in this guild (0 when never bumped)."""
        if not self.enabled:
            return 0  # nothing is memoized, so no key needs it
        return _counter(
            await self.backend.get(f"gen:{kind}:{guild_id or SHARED_BANK}", loads_fn=_counter)
        )

    async def generations(self, kind: str, guild_ids: list[int]) -> list[int]:
        """Several generations in one cache round trip."""
        if not self.enabled:
            return [0] * len(guild_ids)
        keys = [f"gen:{kind}:{g}" for g in guild_ids]
        return [_counter(v) for v in await self.backend.multi_get(keys, loads_fn=_counter)]

    async def invalidate(self, kind: str, guild_id: int | None) -> None:
        """Call after the commit that changed what `kind` covers in this guild.

        A guild's score change also changes the global boards (every guild's points):
        their generation is bumped with it.
        """
        await self.backend.increment(f"gen:{kind}:{guild_id or SHARED_BANK}", 1)
        if kind == SCORES and guild_id:
            await self.backend.increment(f"gen:{kind}:{SHARED_BANK}", 1)

    async def clear(self) -> None:
        """Drop quizbot's keys (tests, `quizbot seed`); a shared Redis keeps everyone else's."""
        await self.backend.clear(namespace=self.backend.namespace)

    async def close(self) -> None:
        """Release the backend's connections."""
        await self.backend.close()
