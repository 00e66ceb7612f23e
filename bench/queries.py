"""The hot queries, indexed vs unindexed: timings and `EXPLAIN (ANALYZE, BUFFERS)`.

The statements are quizbot's own (imported from the services and repositories,
so they follow whatever the code does today); the same statement runs on the
variant's database with the hot indexes and on a copy without them. Where quizbot
replaced a statement rather than indexing it (the period board reads a per-day
roll-up instead of summing answers; a rank is summed from a kept histogram of
points instead of counting the members ahead), the copy without the indexes runs
the statement quizbot used before, labelled as such: the comparison is then what
the new design buys over the old one, not what an index buys the new statement.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text

from bench.config import Scale
from bench.dataset import GUILD_BASE, USER_BASE
from bench.metrics import percentile
from quizbot.config import Settings
from quizbot.db import create_engine
from quizbot.driver import DriverConnection, DriverConnections


@dataclass(frozen=True)
class HotQuery:
    """A named statement with the parameters to run it with."""

    name: str
    sql: TextClause
    params: dict[str, Any]
    # What the copy without hot indexes runs instead: the statement quizbot used before
    # it replaced this one, with its parameters and a label saying so.
    before: HotQuery | None = None
    label: str | None = None


# The period board before member_daily_points: a guild's answers of the window summed
# per member, the page built around it as quizbot builds every page.
_PERIOD_BOARD_FROM_ANSWERS = (
    "SELECT a.user_id, sum(a.points) AS points FROM answers a "
    "WHERE a.guild_id = :guild_id AND a.answered_at >= :since "
    "AND (CAST(:topic AS text) IS NULL OR a.topic = :topic) GROUP BY a.user_id"
)


# The rank /stats counted before the kept histogram (until 2026-12-07).
_STATS_COUNTED_RANK = """CASE WHEN gm.user_id IS NULL OR gm.points <= 0 THEN NULL ELSE (
    SELECT count(*) + 1 FROM guild_members o
    WHERE o.guild_id = k.guild_id AND o.points > gm.points) END"""


def _week_start(now: dt.datetime) -> dt.datetime:
    day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - dt.timedelta(days=day.weekday())


def hot_queries(scale: Scale) -> tuple[list[HotQuery], list[str]]:
    """The statements behind /leaderboard, own rank, period boards, /stats and quiz start.

    Returns:
        The queries, and notes about any that quizbot's code no longer provides.
    """
    notes: list[str] = []
    queries: list[HotQuery] = []
    guild = GUILD_BASE + 1
    # A member in the middle of the guild (rank is hardest to get for the middle).
    middle = USER_BASE + scale.guilds * max(1, scale.members // scale.guilds // 2)
    week = _week_start(dt.datetime.now(dt.UTC))
    try:
        from quizbot.services.stats import (
            _COUNTED_RANK,
            _GUILD_NAME,
            _SOURCES,
            Period,
            _me_sql,
            _page_and_me_sql,
            _page_sql,
            _Source,
            _source_of,
            first_day,
        )

        board = {
            "guild_id": guild,
            "topic": None,
            "since_day": first_day(None),
            "after_points": None,
            "after_user": None,
            "limit": 11,
        }
        queries += [
            HotQuery("leaderboard top-10", _page_sql(_SOURCES[(True, False)]), board),
            HotQuery(
                "own rank",
                _me_sql(_SOURCES[(True, False)]),
                {"guild_id": guild, "topic": None, "me": middle},
                before=HotQuery(
                    "own rank",
                    _me_sql(_SOURCES[(True, False)]._replace(rank=_COUNTED_RANK)),
                    {"guild_id": guild, "topic": None, "me": middle},
                    label="before the histogram: the members ahead counted",
                ),
                label="summed from the kept histogram (guild_points_histogram)",
            ),
            HotQuery(
                "top-10 with own line",
                _page_and_me_sql(_SOURCES[(True, False)]),
                {**board, "me": middle},
                before=HotQuery(
                    "top-10 with own line",
                    _page_and_me_sql(_SOURCES[(True, False)]._replace(rank=_COUNTED_RANK)),
                    {**board, "me": middle},
                    label="before the histogram: the members ahead counted",
                ),
                label="/leaderboard's page and the caller's line in one statement",
            ),
            HotQuery(
                "period leaderboard (week)",
                _page_sql(_source_of(guild, Period.WEEK, None)),
                {**board, "period": Period.WEEK.value, "since_day": first_day(week)},
                before=HotQuery(
                    "period leaderboard (week)",
                    _page_sql(_Source(_PERIOD_BOARD_FROM_ANSWERS, _GUILD_NAME)),
                    {**board, "since": week},
                    label="before the roll-up: the week's answers summed per member",
                ),
                label="the week's kept sums (member_period_points)",
            ),
            HotQuery(
                "global top-10",
                _page_sql(_SOURCES[(False, False)]),
                {**board, "guild_id": None},
            ),
        ]
    except ImportError as exc:
        notes.append(f"leaderboard statements not found in quizbot.services.stats ({exc})")
    try:
        from quizbot.repositories.members import _KEPT_BOARD_SIZE, _STATS, _STATS_SQL

        stats = {"guild_id": guild, "user_id": middle, "recent": 5}
        queries.append(
            HotQuery(
                "stats",
                _STATS,
                stats,
                before=HotQuery(
                    "stats",
                    text(_STATS_SQL.format(rank=_STATS_COUNTED_RANK, members=_KEPT_BOARD_SIZE)),
                    stats,
                    label="before the histogram: the rank counted",
                ),
                label="the rank summed from the kept histogram",
            )
        )
    except ImportError as exc:
        notes.append(f"stats statement not found in quizbot.repositories.members ({exc})")
    queries.append(
        HotQuery(
            "recently seen (quiz start)",
            text(
                "SELECT question_id FROM answers WHERE user_id = :user_id "
                "AND guild_id = :guild_id ORDER BY answered_at DESC LIMIT 300"
            ),
            {"user_id": middle, "guild_id": guild},
        )
    )
    return queries, notes


_EXEC_TIME = re.compile(r"Execution Time: ([0-9.]+) ms")


async def _measure(conn: DriverConnection, q: HotQuery, repeats: int) -> dict[str, Any]:
    # One run to warm the cache, then the timed runs, then the plan.
    await conn.execute(q.sql, q.params)
    times: list[float] = []
    for _ in range(repeats):
        began = time.perf_counter()
        await conn.execute(q.sql, q.params)
        times.append((time.perf_counter() - began) * 1000)
    explain = text("EXPLAIN (ANALYZE, BUFFERS) " + q.sql.text)
    plan = "\n".join(r[0] for r in await conn.execute(explain, q.params))
    match = _EXEC_TIME.search(plan)
    return {
        "median_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "server_ms": float(match.group(1)) if match else None,
        "repeats": repeats,
        "plan": plan,
    }


async def measure(url: str, scale: Scale, repeats: int, *, before: bool = False) -> dict[str, Any]:
    """Time every hot query on one database (client side, and the server's own figure).

    Each runs as quizbot runs it: on the driver (`quizbot.driver`), in autocommit, over
    a connection with the bot's settings (application name, statement caches, jit off).
    Until 2026-12-06 (`850f4c4`) they ran through SQLAlchemy's Core `execute`, which added about
    0.2 ms of client time to every indexed figure (the unindexed ones barely move).

    Args:
        url: the database.
        scale: the seeded dataset's sizes.
        repeats: timed runs per query.
        before: the copy without hot indexes: run the statement quizbot used before
            wherever it replaced one.
    """
    queries, notes = hot_queries(scale)
    if before:
        queries = [q.before or q for q in queries]
    settings = Settings(_env_file=None, database_url=url, redis_url=None)  # type: ignore[call-arg]
    engine = create_engine(settings, url, pool_size=1, max_overflow=0, autocommit=True)
    out: dict[str, Any] = {"notes": notes, "queries": {}}
    try:
        async with DriverConnections(engine)() as conn:
            for q in queries:
                out["queries"][q.name] = await _measure(conn, q, repeats)
                if q.label is not None:
                    out["queries"][q.name]["statement"] = q.label
    finally:
        await engine.dispose()
    return out


def compare(indexed: dict[str, Any], unindexed: dict[str, Any]) -> list[dict[str, Any]]:
    """Per query: indexed vs unindexed median, and how much faster the index makes it."""
    rows = []
    for name, a in indexed["queries"].items():
        b = unindexed["queries"].get(name)
        if b is None:
            continue
        faster = 1 - a["median_ms"] / b["median_ms"] if b["median_ms"] else 0.0
        rows.append(
            {
                "query": name,
                # Set where the two sides run different statements (see the module doc).
                "indexed_statement": a.get("statement"),
                "unindexed_statement": b.get("statement"),
                "indexed_ms": a["median_ms"],
                "unindexed_ms": b["median_ms"],
                "indexed_server_ms": a["server_ms"],
                "unindexed_server_ms": b["server_ms"],
                "faster_pct": 100 * faster,
                "speedup": b["median_ms"] / a["median_ms"] if a["median_ms"] else 0.0,
            }
        )
    return rows


# The member at each position of the first guild's all-time board (bench-only OFFSET).
_AT_POSITION = text(
    "SELECT user_id FROM guild_members WHERE guild_id = :guild_id AND points > 0 "
    "ORDER BY points DESC, user_id OFFSET :k LIMIT 1"
)
_RANKED = text("SELECT count(*) FROM guild_members WHERE guild_id = :guild_id AND points > 0")


async def _timed(call: Callable[[], Awaitable[Any]], repeats: int) -> tuple[Any, dict[str, float]]:
    result = await call()  # warm-up
    times: list[float] = []
    for _ in range(repeats):
        began = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - began) * 1000)
    return result, {"median_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}


async def own_rank(url: str, scale: Scale, repeats: int, redis_url: str | None) -> dict[str, Any]:
    """/leaderboard's own rank and /stats at the top, middle and bottom of the first guild.

    Counted in SQL (quizbot without a mirror), and from the Redis rank mirror (quizbot
    with REDIS_URL once the guild is mirrored) when a Redis answers at `redis_url`. The
    leaderboard goes through `StatsService.leaderboard` with its page already cached, so
    what is timed is the own-rank part; /stats is timed uncached. Both read on the
    driver, as in the app. Counted and mirrored must agree on every rank.
    """
    import redis.asyncio
    import redis.exceptions

    from quizbot.cache import QuizCache
    from quizbot.db import create_sessionmaker, in_transactions
    from quizbot.rank_mirror import RankMirror
    from quizbot.services.stats import StatsService

    guild = GUILD_BASE + 1
    settings = Settings(_env_file=None, database_url=url, redis_url=None)  # type: ignore[call-arg]
    # As the app builds them: reads on the driver, sessions in transactions.
    engine = create_engine(settings, url, pool_size=2, max_overflow=0, autocommit=True)
    sessions, reads = create_sessionmaker(in_transactions(engine)), DriverConnections(engine)
    out: dict[str, Any] = {"guild_members": 0, "positions": {}, "mirror": None, "notes": []}
    client = None
    try:
        async with engine.connect() as conn:
            ranked = (await conn.execute(_RANKED, {"guild_id": guild})).scalar_one()
            out["guild_members"] = ranked
            members = {}
            for label, k in (("top", 0), ("middle", ranked // 2), ("bottom", max(0, ranked - 1))):
                user = (await conn.execute(_AT_POSITION, {"guild_id": guild, "k": k})).scalar()
                if user is not None:
                    members[label] = user
        counted = StatsService(sessions, QuizCache(QuizCache.memory_backend()), reads=reads)
        # /stats holds the same rank and the board's size; timed uncached.
        uncached = QuizCache(QuizCache.memory_backend(), enabled=False)
        counted_stats = StatsService(sessions, uncached, reads=reads)
        for label, user in members.items():
            page, timing = await _timed(
                functools.partial(counted.leaderboard, guild_id=guild, caller_id=user), repeats
            )
            _, stats_timing = await _timed(
                functools.partial(counted_stats.member_stats, guild_id=guild, user_id=user),
                repeats,
            )
            out["positions"][label] = {
                "user_id": user,
                "rank": page.me.rank,
                "counted": timing,
                "stats_counted": stats_timing,
            }
        if redis_url is None:
            out["notes"].append("no Redis given: the rank mirror was not measured")
            return out
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            await client.ping()
        except (redis.exceptions.ConnectionError, OSError) as exc:
            out["notes"].append(f"no Redis at {redis_url} ({exc}): the mirror was not measured")
            return out
        mirror = RankMirror(
            client,
            sessions,
            min_members=1,
            min_totals=1,
            ttl_s=3600,
            namespace=f"quizbot-bench-{uuid.uuid4().hex[:8]}",
        )
        began = time.perf_counter()
        built = await mirror.build(guild)
        out["mirror"] = {"build_s": time.perf_counter() - began, "built": built}
        mirrored = StatsService(
            sessions, QuizCache(QuizCache.memory_backend()), reads=reads, rank_mirror=mirror
        )
        mirrored_stats = StatsService(sessions, uncached, reads=reads, rank_mirror=mirror)
        try:
            for label, user in members.items():
                page, timing = await _timed(
                    functools.partial(mirrored.leaderboard, guild_id=guild, caller_id=user),
                    repeats,
                )
                stats, stats_timing = await _timed(
                    functools.partial(mirrored_stats.member_stats, guild_id=guild, user_id=user),
                    repeats,
                )
                position = out["positions"][label]
                position["mirrored"] = timing
                position["stats_mirrored"] = stats_timing
                position["agree"] = (
                    page.me is not None
                    and page.me.rank == position["rank"]
                    and stats.rank == position["rank"]
                )
        finally:
            await mirror.drop()
    finally:
        if client is not None:
            await client.aclose()
        await engine.dispose()
    return out
