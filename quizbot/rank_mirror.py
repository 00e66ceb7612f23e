"""Own rank in O(log n) for large guilds: each one's points mirrored in a Redis sorted set.

A member's rank on a guild's all-time board is 1 + the members with more points. In
PostgreSQL that was an index-only count of the rows ahead: proportional to the rank, so
tens of milliseconds in the middle and at the bottom of a million members (29-150 ms
p95 on the benchmark's machines). Since 2026-12-07 it is summed from the guild's kept
histogram of points (`GuildPointsHistogram`): one row per distinct total above the
member, few where totals tie (498 for the benchmark's million members), but as many as
the members ahead where no two tie. A sorted set answers `ZCOUNT` in O(log n), well
under a millisecond, however the totals spread.

So a guild is mirrored only where summing its histogram would cost more than asking
Redis: when a rank read in SQL comes out at least `RANK_MIRROR_MIN_MEMBERS` deep (a
large board, noticed for free), the guild's distinct totals are counted in the
background, and only with at least `RANK_MIRROR_MIN_TOTALS` of them is its mirror built
from one snapshot of `guild_members`. Summing a histogram took 0.4 ms over 1,000 rows,
1.5 ms over 10,000 and 17 ms over 100,000 (2026-12-07), against 0.6-0.7 ms p95 for the
mirror's rank in the benchmark; the benchmark's million members hold 498 totals, and
are not mirrored. A guild found with fewer totals is not counted again for
`NOT_NEEDED_S`. Until a mirror is ready, and for every other guild, ranks are read in
SQL. Only with `REDIS_URL` set.

Consistency. PostgreSQL stays the truth; the mirror holds each member's latest points:

- after every commit that changed points (the answer writer, the one-answer path) the
  new totals are written with `ZADD GT`, in one round trip for the whole batch, and
  only while the guild has a mirror (a Lua script checks its state key atomically);
- points only grow, except a leaderboard reset or a deleted user: those drop the
  guild's mirror (or every mirror), and the next deep rank rebuilds it;
- `GT` makes writes order-free: a late write of an older total cannot lower a newer
  one, whether it comes from another process or from the build's snapshot (updates
  committed during the build are applied on top of it, because the state key exists
  from the build's start);
- a process that dies between its commit and its write leaves those members one
  answer behind (the next answer writes their total); the mirror expires after
  `RANK_MIRROR_TTL_S` and is rebuilt, which bounds any drift.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

# Rows per ZADD while building (one round trip each).
BUILD_CHUNK = 10_000
# How long a guild found not mirrored is taken as such without asking Redis again, and
# how long after a failed build the next one may start.
NOT_MIRRORED_S = 30.0
# How long a guild found with too few distinct totals to need a mirror is not counted
# again (its histogram grows by new totals only, slowly).
NOT_NEEDED_S = 600.0
# A build owns its guild this long (a crashed build frees it then); a build of a million
# members takes a few seconds.
BUILD_LEASE_S = 300
# A sorted set outlives its state key by this much, so it is never gone while the state
# still says "ready" (a set without a state is never read; the next build deletes it).
SET_MARGIN_MS = 60_000

# One call for a whole batch: KEYS are (sorted set, state) pairs, one pair per guild;
# ARGV holds, per guild in the same order, the count n of the values that follow, then n
# values (score, member, score, member, ...). A guild is written only while it is
# mirrored or being built (its state key exists: PTTL -2 means missing), in chunks within
# Lua's unpack limit, and its set is kept alive a margin past its state.
_UPDATE = """
local at = 1
for k = 1, #KEYS, 2 do
  local n = tonumber(ARGV[at])
  local pttl = redis.call('PTTL', KEYS[k + 1])
  if pttl ~= -2 then
    for first = at + 1, at + n, 2000 do
      local last = math.min(first + 1999, at + n)
      redis.call('ZADD', KEYS[k], 'GT', unpack(ARGV, first, last))
    end
    if pttl > 0 then
      redis.call('PEXPIRE', KEYS[k], pttl + {margin})
    end
  end
  at = at + n + 1
end
return 0
""".replace("{margin}", str(SET_MARGIN_MS))
# KEYS[1] the state, KEYS[2] the sorted set; ARGV[1] the build's token, ARGV[2] its lease
# (s). Takes the guild for this build and deletes what an earlier mirror left, at once.
_START_BUILD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""
# KEYS[1] the state, KEYS[2] the sorted set; ARGV[1] the build's token, ARGV[2..] score,
# member, ... Writes one chunk of the snapshot only while the build still owns the guild:
# after a drop (a reset) and another build, a late chunk of the old snapshot must not
# land in the new set, where GT would keep its stale, higher totals.
_BUILD_CHUNK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
for first = 2, #ARGV, 2000 do
  redis.call('ZADD', KEYS[2], 'GT', unpack(ARGV, first, math.min(first + 1999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1]) + {margin})
return 1
""".replace("{margin}", str(SET_MARGIN_MS))
# KEYS[1] the state, KEYS[2] the sorted set; ARGV[1] the build's token, ARGV[2] TTL (s).
# Marks the mirror ready only if this build still owns it (no reset dropped it meanwhile).
_FINISH_BUILD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'ready', 'EX', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2] * 1000 + {margin})
  return 1
end
return 0
""".replace("{margin}", str(SET_MARGIN_MS))
# KEYS[1] the state, KEYS[2] the sorted set; ARGV[1] the build's token. A failed or
# cancelled build gives the guild back, so the next deep rank can build it again.
_ABANDON_BUILD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return 0
"""

# The guild's distinct totals (rows of its kept histogram), counted up to :enough.
_TOTALS = text(
    "SELECT count(*) FROM (SELECT 1 FROM guild_points_histogram "
    "WHERE guild_id = :guild_id LIMIT :enough) t"
)
_SNAPSHOT = text(
    "SELECT user_id, points FROM guild_members WHERE guild_id = :guild_id AND points > 0"
)


class RankMirror:
    """The sorted sets, their upkeep and the rank reads (see the module docstring)."""

    def __init__(
        self,
        redis: Any,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        min_members: int,
        min_totals: int,
        ttl_s: int,
        namespace: str = "quizbot",
    ) -> None:
        """Args:
        redis: a `redis.asyncio.Redis` client.
        sessionmaker: transactional sessions, for the count of totals and the build's
            snapshot.
        min_members: look at a guild once a member ranks at least this deep.
        min_totals: mirror it if its points hold at least this many distinct totals.
        ttl_s: how long a built mirror lives before it is rebuilt.
        namespace: the keys' prefix (the cache's, so clearing the cache clears them).
        """
        self._prefix = f"{namespace}:rank"
        self._redis = redis
        self._sessions = sessionmaker
        self.min_members = min_members
        self.min_totals = min_totals
        self.ttl_s = ttl_s
        self._update = redis.register_script(_UPDATE)
        self._start = redis.register_script(_START_BUILD)
        self._chunk = redis.register_script(_BUILD_CHUNK)
        self._finish = redis.register_script(_FINISH_BUILD)
        self._abandon = redis.register_script(_ABANDON_BUILD)
        self._builds: dict[int, asyncio.Task[bool]] = {}
        self._not_mirrored: dict[int, float] = {}  # guild -> until when (monotonic)
        # guild -> no new build before (monotonic): after a failed build, or after a
        # count of totals that found no need
        self._quiet_until: dict[int, float] = {}

    def _zset(self, guild_id: int) -> str:
        return f"{self._prefix}:{guild_id}"

    def _state(self, guild_id: int) -> str:
        return f"{self._prefix}:{guild_id}:state"

    async def ready(self, guild_id: int) -> bool:
        """Whether the guild's mirror can answer ranks.

        Most guilds are never mirrored: a "no" is remembered for `NOT_MIRRORED_S`, so
        their ranks do not pay a Redis round trip each (a mirror built by another process
        is used that much later).
        """
        now = time.monotonic()
        if self._not_mirrored.get(guild_id, 0.0) > now:
            return False
        state = await self._redis.get(self._state(guild_id))
        if state in (b"ready", "ready"):
            return True
        if len(self._not_mirrored) > 10_000:
            self._not_mirrored = {g: t for g, t in self._not_mirrored.items() if t > now}
        self._not_mirrored[guild_id] = now + NOT_MIRRORED_S
        return False

    async def rank(self, guild_id: int, points: int) -> int | None:
        """1 + the members with more than `points`; None when the guild is not mirrored."""
        standing = await self.standing(guild_id, points)
        return None if standing is None else standing[0]

    async def standing(self, guild_id: int, points: int) -> tuple[int | None, int] | None:
        """(rank, ranked members) on the guild's board for `points`; None when not mirrored.

        The rank is None for a member without points, as in SQL (they are not ranked).
        """
        # MULTI/EXEC (still one round trip): a drop between reading the state and
        # counting would otherwise count an empty set and rank everyone first.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._state(guild_id))
            pipe.zcount(self._zset(guild_id), f"({points}", "+inf")
            pipe.zcount(self._zset(guild_id), "(0", "+inf")
            state, ahead, members = await pipe.execute()
        if state not in (b"ready", "ready") or not members:
            return None  # not mirrored (an empty set is never a real board: count instead)
        return (int(ahead) + 1 if points > 0 else None), int(members)

    async def points_changed(self, totals: Iterable[tuple[int, int, int]]) -> None:
        """Write members' new totals, (guild_id, user_id, points), after their commit.

        Never raises: the points are committed, and failing the caller would report
        stored answers as failed. A total that could not be written is written by the
        member's next answer, and the mirror's TTL bounds the drift meanwhile.
        """
        by_guild: dict[int, list[Any]] = {}
        for guild_id, user_id, points in totals:
            by_guild.setdefault(guild_id, []).extend((points, user_id))
        if not by_guild:
            return
        keys: list[str] = []
        args: list[Any] = []
        for guild_id, values in by_guild.items():
            keys += [self._zset(guild_id), self._state(guild_id)]
            args += [len(values), *values]
        try:
            await self._update(keys=keys, args=args)  # one round trip (EVALSHA)
        except Exception:
            log.exception("could not update the rank mirrors of guilds %s", sorted(by_guild))

    def ranked(self, guild_id: int, rank: int) -> None:
        """Told of a rank read in SQL: a deep one starts building the guild's mirror if
        the guild needs one (`build_if_needed`)."""
        if rank < self.min_members or guild_id in self._builds:
            return
        if self._quiet_until.get(guild_id, 0.0) > time.monotonic():
            # The last build failed (Redis away?), or the guild was found not to need a
            # mirror: not one attempt per request.
            return
        task = asyncio.get_running_loop().create_task(
            self.build_if_needed(guild_id), name=f"rank-mirror-{guild_id}"
        )
        self._builds[guild_id] = task
        task.add_done_callback(lambda t: self._built(guild_id, t))

    def _built(self, guild_id: int, task: asyncio.Task[bool]) -> None:
        self._builds.pop(guild_id, None)
        if not task.cancelled() and task.exception() is not None:
            self._quiet(guild_id, NOT_MIRRORED_S)
            log.error(
                "could not count the totals of, or build, the rank mirror of guild %s",
                guild_id,
                exc_info=task.exception(),
            )

    async def needed(self, guild_id: int) -> bool:
        """Whether the guild's points hold at least `min_totals` distinct totals: where
        summing the histogram above a member would cost more than asking the mirror."""
        async with self._sessions() as session:
            result = await session.execute(
                _TOTALS, {"guild_id": guild_id, "enough": self.min_totals}
            )
            return int(result.scalar_one()) >= self.min_totals

    async def build_if_needed(self, guild_id: int) -> bool:
        """Build the guild's mirror if it is `needed`; whether a build was done.

        A guild that does not need one is left alone for `NOT_NEEDED_S`.
        """
        if not await self.needed(guild_id):
            log.info(
                "rank mirror of guild %s: not needed (fewer than %d distinct totals)",
                guild_id,
                self.min_totals,
            )
            self._quiet(guild_id, NOT_NEEDED_S)
            return False
        return await self.build(guild_id)

    def _quiet(self, guild_id: int, seconds: float) -> None:
        """No build for the guild for `seconds`."""
        now = time.monotonic()
        if len(self._quiet_until) > 10_000:
            self._quiet_until = {g: t for g, t in self._quiet_until.items() if t > now}
        self._quiet_until[guild_id] = now + seconds

    async def build(self, guild_id: int) -> bool:
        """Build the guild's mirror from one snapshot; False when another build owns it."""
        token = secrets.token_hex(8)
        keys = [self._state(guild_id), self._zset(guild_id)]
        # The state key exists from here on, so updates committed during the snapshot
        # are written too (ZADD GT merges them with it).
        if not await self._start(keys=keys, args=[token, BUILD_LEASE_S]):
            return False
        try:
            rows = 0
            done = True
            async with self._sessions() as session, session.begin():
                result = await session.stream(_SNAPSHOT, {"guild_id": guild_id})
                async for chunk in result.partitions(BUILD_CHUNK):
                    values: list[Any] = []
                    for user_id, points in chunk:
                        values += (points, user_id)
                    if not await self._chunk(keys=keys, args=[token, *values]):
                        done = False  # dropped (or the lease ran out): stop writing
                        break
                    rows += len(chunk)
            if done:
                done = bool(await self._finish(keys=keys, args=[token, self.ttl_s]))
        except BaseException:
            await asyncio.shield(self._abandon(keys=keys, args=[token]))
            raise
        self._not_mirrored.pop(guild_id, None)
        # Not done: dropped while building (a reset). The set is left to expire; with no
        # state key it is never read, and the next build starts by deleting it.
        log.info(
            "rank mirror of guild %s: %d members%s", guild_id, rows, "" if done else " (dropped)"
        )
        return done

    async def drop(self, guild_id: int | None = None) -> None:
        """Forget one guild's mirror (points went down), or every mirror (None)."""
        if guild_id is not None:
            await self._redis.delete(self._state(guild_id), self._zset(guild_id))
            return
        keys = [k async for k in self._redis.scan_iter(match=f"{self._prefix}:*", count=1000)]
        if keys:
            await self._redis.delete(*keys)

    async def wait_for_builds(self) -> None:
        """Wait for the builds under way (tests; a build's failure is logged, not raised)."""
        await asyncio.gather(*self._builds.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop builds under way (each gives its guild back, see `build`)."""
        for task in list(self._builds.values()):
            task.cancel()
        await self.wait_for_builds()
