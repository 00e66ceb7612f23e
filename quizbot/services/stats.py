"""Member stats and leaderboards: per guild or global, all time or by day/week/month.

Pages use keyset pagination (never OFFSET): a cursor carries the last row's
(points, user_id) and its rank, so page 50 costs what page 1 costs. Ranks are
competition ranks (1, 2, 2, 4). Display names are stored, never looked up in Discord.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import enum
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Row, TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quizbot.cache import SCORES, QuizCache
from quizbot.driver import prime_at_start
from quizbot.errors import InvalidInputError
from quizbot.models.guild import HISTOGRAM_RANK_SQL, PERIOD_KINDS
from quizbot.rank_mirror import RankMirror
from quizbot.repositories import ExecutorFactory, MemberRepository, MemberStats
from quizbot.resilience import retry_transient

MAX_PAGE = 25


class Period(enum.StrEnum):
    """The time window of a leaderboard."""

    ALL = "all"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after this row."""

    points: int
    user_id: int
    rank: int
    position: int

    def encode(self) -> str:
        """A compact string that fits in a Discord custom id."""
        return f"{self.points}.{self.user_id}.{self.rank}.{self.position}"

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """Parse `encode`'s output.

        Raises:
            InvalidInputError: not a cursor.
        """
        try:
            points, user_id, rank, position = (int(p) for p in value.split("."))
        except ValueError:
            raise InvalidInputError("invalid leaderboard page") from None
        return cls(points, user_id, rank, position)


@dataclass(frozen=True)
class Entry:
    """One leaderboard row."""

    rank: int
    user_id: int
    name: str
    points: int


@dataclass(frozen=True)
class LeaderboardPage:
    """A page of a leaderboard, plus the caller's own standing."""

    entries: tuple[Entry, ...]
    next_cursor: Cursor | None
    me: Entry | None
    period: Period
    guild_id: int | None
    topic: str | None
    # Seconds between refreshes of a board read on a clock (global boards of a window
    # or a topic, see `StatsService`); 0: as of the last score change.
    refresh_s: int = 0


def period_start(period: Period, now: dt.datetime) -> dt.datetime | None:
    """Start of the window (UTC): today, this ISO week, this month; None for all time."""
    day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - dt.timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return None


# A member's rank on a board: one plus the board's rows with more points (`b` is the
# board, `me` the member's row).
_COUNTED_RANK = "(SELECT count(*) + 1 FROM b WHERE b.points > me.points)"


class _Source(NamedTuple):
    """One board's rows: `sql` yields (user_id, points); `name` is a scalar sub-select
    of a row's display name, with `{row}` standing for the row's alias; `rank` is a
    member's rank, as in `_COUNTED_RANK`."""

    sql: str
    name: str
    rank: str = _COUNTED_RANK


_GUILD_NAME = (
    "(SELECT gm.display_name FROM guild_members gm "
    "WHERE gm.guild_id = :guild_id AND gm.user_id = {row}.user_id)"
)
_GLOBAL_NAME = "(SELECT u.name FROM users u WHERE u.user_id = {row}.user_id)"

# Each source yields (user_id, points) for one scope; the page and rank queries below
# are built on it, and names are looked up for the rows shown only (after the top-N),
# never joined to a whole board first. All-time boards read the ranked index of
# guild_members / users; period and topic boards sum the per-day roll-up of the
# answers (member_daily_points) over the window's days: a window starts at a UTC
# midnight, so its days hold exactly the answers since then. The sum is cast back to
# bigint, the type a sum of the answers' integer points had.
_SOURCES: dict[tuple[bool, bool], _Source] = {
    # (guild scope, from the answers' roll-up)
    (True, False): _Source(
        "SELECT user_id, points FROM guild_members WHERE guild_id = :guild_id",
        _GUILD_NAME,
        # Summed from the kept histogram: counting the members ahead took 90 ms in the
        # middle of a million members.
        HISTOGRAM_RANK_SQL.format(guild_id=":guild_id", points="me.points"),
    ),
    (False, False): _Source("SELECT user_id, points FROM users", _GLOBAL_NAME),
    (True, True): _Source(
        "SELECT d.user_id, CAST(sum(d.points) AS bigint) AS points FROM member_daily_points d "
        "WHERE d.guild_id = :guild_id AND d.day >= :since_day "
        "AND (CAST(:topic AS text) IS NULL OR d.topic = :topic) GROUP BY d.user_id",
        _GUILD_NAME,
    ),
    (False, True): _Source(
        "SELECT d.user_id, CAST(sum(d.points) AS bigint) AS points FROM member_daily_points d "
        "WHERE d.day >= :since_day "
        "AND (CAST(:topic AS text) IS NULL OR d.topic = :topic) GROUP BY d.user_id",
        _GLOBAL_NAME,
    ),
}

# A guild's board of this week or this month (no topic): the members' sums of the
# window are kept (member_period_points), so its top and a member's rank are ranges of
# one index where the roll-up's days would be summed per member first.
_PERIOD_SOURCE = _Source(
    "SELECT user_id, points FROM member_period_points "
    "WHERE guild_id = :guild_id AND period = :period AND starts = :since_day",
    _GUILD_NAME,
)
_KEPT_PERIODS = frozenset(Period(kind) for kind in PERIOD_KINDS)


def _source_of(guild_id: int | None, period: Period, topic: str | None) -> _Source:
    """Where a board's (user_id, points) rows come from."""
    if guild_id is not None and topic is None and period in _KEPT_PERIODS:
        return _PERIOD_SOURCE
    return _SOURCES[(guild_id is not None, period is not Period.ALL or topic is not None)]


def _board(
    guild_id: int | None, period: Period, topic: str | None, since: dt.datetime | None
) -> tuple[_Source, dict[str, Any]]:
    """A board's source and the parameters every statement built on it takes."""
    params = {
        "guild_id": guild_id,
        "topic": topic,
        "period": period.value,
        "since_day": first_day(since),
    }
    return _source_of(guild_id, period, topic), params


# A topic board of all time starts here.
_FIRST_DAY = dt.date(1970, 1, 1)


# `StatsService._load_page`'s arguments: board, window, cursor, rows, and the version
# the cache keys the page by.
_PageKey = tuple[int | None, Period, str | None, dt.datetime | None, Cursor | None, int, int]


def _page_board(
    guild_id: int | None,
    period: Period,
    topic: str | None,
    since: dt.datetime | None,
    after: Cursor | None,
    limit: int,
) -> tuple[_Source, dict[str, Any]]:
    """`_board`, with the parameters of a page of `limit` rows after `after`."""
    source, params = _board(guild_id, period, topic, since)
    params.update(
        after_points=after.points if after else None,
        after_user=after.user_id if after else None,
        limit=limit,
    )
    return source, params


def first_day(since: dt.datetime | None) -> dt.date:
    """The first day of the roll-up a window covers (`period_start`'s UTC midnight).

    Raises:
        ValueError: `since` is not a UTC midnight: the roll-up counts whole days.
    """
    if since is None:
        return _FIRST_DAY
    start = since.astimezone(dt.UTC)
    if start.time() != dt.time(0):
        raise ValueError(f"a board's window starts at a UTC midnight, not {since.isoformat()}")
    return start.date()


# A member's name and points on the all-time board, by key (ranked by the mirror).
MEMBER_POINTS = text(
    "SELECT coalesce(display_name, '') AS name, points FROM guild_members "
    "WHERE guild_id = :guild_id AND user_id = :me"
)


def _page_select(source: _Source) -> str:
    """A page of the board: (user_id, name, points) after the cursor, best first."""
    return (
        f"SELECT t.user_id, coalesce({source.name.format(row='t')}, '') AS name, t.points "
        f"FROM (SELECT user_id, points FROM ({source.sql}) b "
        "WHERE points > 0 AND (CAST(:after_points AS bigint) IS NULL "
        "OR points < :after_points OR (points = :after_points AND user_id > :after_user)) "
        "ORDER BY points DESC, user_id LIMIT :limit) t "
        "ORDER BY t.points DESC, t.user_id"
    )


def _me_select(source: _Source) -> str:
    """The member's row of the board with their rank: (user_id, name, points, rank)."""
    return (
        # NOT MATERIALIZED: referenced twice, the CTE would otherwise be computed (copied)
        # in full, and neither the member's key nor the ranked index would be used.
        f"WITH b AS NOT MATERIALIZED ({source.sql}), "
        "me AS (SELECT * FROM b WHERE user_id = :me) "
        f"SELECT me.user_id, coalesce({source.name.format(row='me')}, '') AS name, me.points, "
        f"{source.rank} AS rank FROM me WHERE me.points > 0"
    )


# Built once per source: text() parses its bind parameters with a regex on every call.
@functools.cache
def _page_sql(source: _Source) -> TextClause:
    return text(_page_select(source))


@functools.cache
def _me_sql(source: _Source) -> TextClause:
    return text(_me_select(source))


# A page and the caller's own row in one round trip (a page not in the cache): the
# page's rows first (`mine` false, no rank), best first, then the caller's row, if
# they hold points. Each part is referenced once, so the server plans it as alone.
@functools.cache
def _page_and_me_sql(source: _Source) -> TextClause:
    return text(
        f"WITH page AS ({_page_select(source)}), mine AS ({_me_select(source)}) "
        "SELECT false AS mine, user_id, name, points, CAST(NULL AS bigint) AS rank FROM page "
        "UNION ALL SELECT true, user_id, name, points, rank FROM mine "
        "ORDER BY mine, points DESC, user_id"
    )


# A member's row of a board, without their rank (for a rank taken from a histogram).
@functools.cache
def _row_sql(source: _Source) -> TextClause:
    return text(
        f"SELECT b.user_id, coalesce({source.name.format(row='b')}, '') AS name, b.points "
        f"FROM ({source.sql}) b WHERE b.user_id = :me AND b.points > 0"
    )


# How many of a board's members hold each number of points: a row per distinct total
# (at most one per member; fewer where totals tie).
@functools.cache
def _histogram_sql(source: _Source) -> TextClause:
    return text(
        f"SELECT b.points, count(*) AS members FROM ({source.sql}) b "
        "WHERE b.points > 0 GROUP BY b.points ORDER BY b.points"
    )


# Every board's page and own line, and the clocked global boards' rows and histogram,
# run on the driver.
_GLOBAL_SUMMED = _SOURCES[(False, True)]
prime_at_start(
    MEMBER_POINTS,
    *(_page_sql(s) for s in (*_SOURCES.values(), _PERIOD_SOURCE)),
    *(_me_sql(s) for s in (*_SOURCES.values(), _PERIOD_SOURCE)),
    *(_page_and_me_sql(s) for s in (*_SOURCES.values(), _PERIOD_SOURCE)),
    _row_sql(_GLOBAL_SUMMED),
    _histogram_sql(_GLOBAL_SUMMED),
)


@dataclass(frozen=True)
class PointsHistogram:
    """A board's members by points, for competition ranks by bisection."""

    points: tuple[int, ...]  # ascending, distinct
    at_or_below: tuple[int, ...]  # members with at most points[i] points: running sums

    @classmethod
    def of(cls, rows: Sequence[tuple[int, int]]) -> PointsHistogram:
        """From (points, members) rows in ascending order of points."""
        return cls(
            tuple(int(p) for p, _n in rows), tuple(itertools.accumulate(n for _p, n in rows))
        )

    def rank(self, points: int) -> int:
        """1 + how many members hold more than `points`."""
        total = self.at_or_below[-1] if self.at_or_below else 0
        i = bisect.bisect_right(self.points, points)
        return 1 + total - (self.at_or_below[i - 1] if i else 0)


def _ranked_page(rows: Sequence[Any], after: Cursor | None) -> tuple[Entry, ...]:
    """A page's rows (user_id, name, points; best first) as entries with competition
    ranks, going on from the cursor's."""
    entries: list[Entry] = []
    prev_points, prev_rank = (after.points, after.rank) if after else (None, 0)
    position = after.position if after else 0
    for r in rows:
        position += 1
        rank = prev_rank if r.points == prev_points else position
        entries.append(Entry(rank, r.user_id, r.name, int(r.points)))
        prev_points, prev_rank = r.points, rank
    return tuple(entries)


def _ranked_entry(row: Any) -> Entry:
    """A member's row of a board with its rank (user_id, name, points, rank)."""
    return Entry(int(row.rank), row.user_id, row.name, int(row.points))


class StatsService:
    """Reads for /stats and /leaderboard, memoized until the next score change (global
    boards of a window or a topic: until the next refresh, see `global_board_refresh_s`)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: QuizCache,
        *,
        stats_single_statement: bool = True,
        reads: ExecutorFactory | None = None,
        rank_mirror: RankMirror | None = None,
        global_board_refresh_s: int = 0,
    ) -> None:
        """Args:
        sessionmaker: one session per read.
        cache: memoized reads and their invalidation.
        stats_single_statement: /stats in one statement (STATS_SINGLE_STATEMENT);
            off, one statement per part.
        reads: what these reads run on (default `sessionmaker`). The app passes
            autocommit driver connections (`driver.DriverConnections`): no
            BEGIN/ROLLBACK round trips and no ORM session per read; every read here
            is one statement that returns rows.
        rank_mirror: own ranks on the all-time board of large guilds (with Redis).
        global_board_refresh_s: global boards of a window or a topic (GLOBAL_BOARD_REFRESH_S)
            are read on a clock, at most once per this many seconds per page and per
            caller's own row, instead of after every score change; 0: after every score
            change. Their rows are summed from every guild's days of the window, and
            any answer in any guild changes them, so with a busy bot they would be summed
            again for almost every call (about 100 ms for the week's 115,000 rows of the
            benchmark's large scale). Own ranks there come from a histogram of the
            board's points, summed once per slot for every caller.
        """
        self._sessions = sessionmaker
        self._rank_mirror = rank_mirror
        self._reads: ExecutorFactory = reads or sessionmaker
        self._cache = cache
        self.stats_single_statement = stats_single_statement
        self._cached_stats = cache.memoize("stats", self._load_stats, ttl=60)
        self._cached_page = cache.memoize("board", self._load_page, ttl=60)
        self.global_board_refresh_s = global_board_refresh_s
        # Keyed by the refresh slot instead of the scores' generation; an entry outlives
        # its slot by less than one refresh.
        clock_ttl = max(1, global_board_refresh_s)
        self._clocked_page = cache.memoize("gboard", self._load_page, ttl=clock_ttl)
        self._clocked_me = cache.memoize("gme", self._load_clocked_me, ttl=clock_ttl)
        self._clocked_histogram = cache.memoize("ghist", self._load_histogram, ttl=clock_ttl)

    async def _load_stats(self, guild_id: int, user_id: int, _gen: int) -> MemberStats:
        mirror = self._rank_mirror
        if mirror is not None and self.stats_single_statement and await mirror.ready(guild_id):
            # A mirrored guild's rank and board size come from Redis, not from a count.
            stats = await self._read_stats(guild_id, user_id, counts=False)
            standing = await mirror.standing(guild_id, stats.points)
            if standing is not None:
                rank, members = standing
                return dataclasses.replace(stats, rank=rank, members=members)
            # Dropped or expired meanwhile: count after all.
        stats = await self._read_stats(guild_id, user_id, counts=True)
        if mirror is not None and stats.rank is not None:
            mirror.ranked(guild_id, stats.rank)  # a deep rank may start building a mirror
        return stats

    async def _rows(self, statement: TextClause, params: dict[str, Any]) -> Sequence[Row[Any]]:
        """One read statement's rows (retried once when its connection went stale)."""

        async def read() -> Sequence[Row[Any]]:
            async with self._reads() as session:
                return (await session.execute(statement, params)).all()

        return await retry_transient(read)

    async def _row(self, statement: TextClause, params: dict[str, Any]) -> Row[Any] | None:
        """One read statement's only row, or None."""
        rows = await self._rows(statement, params)
        return rows[0] if rows else None

    async def _read_stats(self, guild_id: int, user_id: int, *, counts: bool) -> MemberStats:
        async def load() -> MemberStats:
            async with self._reads() as session:
                repo = MemberRepository(session=session)
                if self.stats_single_statement:
                    return await repo.stats(guild_id=guild_id, user_id=user_id, counts=counts)
                return await repo.stats_by_parts(guild_id=guild_id, user_id=user_id)

        return await retry_transient(load)

    async def member_stats(self, *, guild_id: int, user_id: int) -> MemberStats:
        """A member's comprehensive stats (one statement; zeros for a newcomer).

        Args:
            guild_id: the guild.
            user_id: the member.

        Returns:
            Totals, accuracy, per-topic accuracy, streaks, level, rank and recent achievements.
        """
        gen = await self._cache.generation(SCORES, guild_id)
        return await self._cached_stats(guild_id, user_id, gen)

    async def _load_page(
        self,
        guild_id: int | None,
        period: Period,
        topic: str | None,
        since: dt.datetime | None,
        after: Cursor | None,
        limit: int,
        _version: int,
    ) -> tuple[Entry, ...]:
        """`_version` is part of the cache key only: the scores' generation, or the
        refresh slot of a board read on a clock."""
        source, params = _page_board(guild_id, period, topic, since, after, limit)
        rows = await self._rows(_page_sql(source), params)
        return _ranked_page(rows, after)

    async def leaderboard(
        self,
        *,
        guild_id: int | None,
        caller_id: int | None = None,
        period: Period = Period.ALL,
        topic: str | None = None,
        after: Cursor | None = None,
        limit: int = 10,
        now: dt.datetime | None = None,
    ) -> LeaderboardPage:
        """A page of a leaderboard and the caller's own rank.

        Args:
            guild_id: the guild, or None for the global board.
            caller_id: whose own rank to include.
            period: all time, or today / this week / this month (UTC).
            topic: only points earned in this topic.
            after: the cursor of the previous page (None for the first page).
            limit: rows per page, at most 25.
            now: the current time (tests): the window, and the refresh slot of a board
                read on a clock.

        Returns:
            The rows, the next page's cursor (None on the last page) and the caller's entry.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"a leaderboard page holds 1 to {MAX_PAGE} rows")
        now = now or dt.datetime.now(dt.UTC)
        since = period_start(period, now)
        refresh_s = self._refresh_s(guild_id, period, topic)
        if refresh_s:
            slot = int(now.timestamp()) // refresh_s
            cached_page = self._clocked_page
        else:
            slot = await self._cache.generation(SCORES, guild_id)
            cached_page = self._cached_page
        # One more row than shown tells whether there is a next page.
        page_key = (guild_id, period, topic, since, after, limit + 1, slot)
        me = None
        if caller_id is not None and not refresh_s:
            rows, me = await self._page_and_my_entry(page_key, caller_id)
        else:
            rows = await cached_page(*page_key)
            if caller_id is not None:
                (me,) = await self._clocked_me(caller_id, period, topic, since, slot)
        entries = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = entries[-1]
            position = (after.position if after else 0) + len(entries)
            next_cursor = Cursor(last.points, last.user_id, last.rank, position)
        return LeaderboardPage(entries, next_cursor, me, period, guild_id, topic, refresh_s)

    def _refresh_s(self, guild_id: int | None, period: Period, topic: str | None) -> int:
        """How often a board is read again on a clock; 0 for boards read as of the last
        score change (every guild's board, and the global all-time board, which is an
        index range of `users`)."""
        summed_globally = guild_id is None and (period is not Period.ALL or topic is not None)
        # Without the cache nothing is memoized: every call sums, and the board says so.
        on_clock = summed_globally and self._cache.enabled
        return self.global_board_refresh_s if on_clock else 0

    async def _load_clocked_me(
        self, user_id: int, period: Period, topic: str | None, since: dt.datetime | None, slot: int
    ) -> tuple[Entry | None]:
        """The caller's row of the global board (their own days, found by the member
        index) ranked in the slot's histogram, which every caller shares: counting the
        members ahead would sum the whole window again for each caller. In a tuple, so
        a caller without points is memoized too (a bare None is not stored)."""
        # The histogram first: a window's points only grow, so the caller's row read
        # after it holds at least the points the histogram has for them, and they are
        # never counted ahead of themselves.
        histogram = await self._clocked_histogram(period, topic, since, slot)
        source, params = _board(None, period, topic, since)
        params["me"] = user_id

        row = await self._row(_row_sql(source), params)
        if row is None:
            return (None,)
        return (Entry(histogram.rank(int(row.points)), user_id, row.name, int(row.points)),)

    async def _load_histogram(
        self, period: Period, topic: str | None, since: dt.datetime | None, _slot: int
    ) -> PointsHistogram:
        source, params = _board(None, period, topic, since)
        rows = await self._rows(_histogram_sql(source), params)
        return PointsHistogram.of([(r.points, r.members) for r in rows])

    async def _page_and_my_entry(
        self,
        page_key: _PageKey,
        user_id: int,
    ) -> tuple[tuple[Entry, ...], Entry | None]:
        """A page of a board read as of the last score change (its `_load_page`
        arguments) and the caller's entry on it.

        A page found in the cache costs the entry's statement alone. A page to read is
        read with the entry in one statement (`_page_and_me_sql`), unless the guild's
        rank mirror answers the entry.
        """
        guild_id, period, topic, since, _after, _rows_wanted, _version = page_key
        all_time = period is Period.ALL and topic is None
        mirror = self._rank_mirror if guild_id is not None and all_time else None
        if mirror is not None and guild_id is not None and await mirror.ready(guild_id):
            rows = await self._cached_page(*page_key)
            answered, entry = await self._my_mirrored_entry(mirror, guild_id, user_id)
            if answered:
                return rows, entry
            entry = await self._my_counted_entry(guild_id, user_id, period, topic, since)
        else:
            read_with_page: list[Entry | None] = []

            async def page_and_entry() -> tuple[Entry, ...]:
                page, entry = await self._load_page_and_entry(page_key, user_id)
                read_with_page.append(entry)
                return page

            # A caller that found the page cached, or waited for another's read of it,
            # did not read its entry: it reads it alone.
            rows = await self._cached_page.load_with(page_and_entry, *page_key)
            if read_with_page:
                entry = read_with_page[0]
            else:
                entry = await self._my_counted_entry(guild_id, user_id, period, topic, since)
        if mirror is not None and guild_id is not None and entry is not None:
            mirror.ranked(guild_id, entry.rank)  # a deep rank may start building a mirror
        return rows, entry

    async def _load_page_and_entry(
        self, page_key: _PageKey, user_id: int
    ) -> tuple[tuple[Entry, ...], Entry | None]:
        """`_load_page(*page_key)` and `_my_counted_entry` in one statement."""
        guild_id, period, topic, since, after, limit, _version = page_key
        source, params = _page_board(guild_id, period, topic, since, after, limit)
        params["me"] = user_id
        rows = await self._rows(_page_and_me_sql(source), params)
        page = [r for r in rows if not r.mine]
        mine = [_ranked_entry(r) for r in rows if r.mine]
        return _ranked_page(page, after), (mine[0] if mine else None)

    async def _my_mirrored_entry(
        self, mirror: RankMirror, guild_id: int, user_id: int
    ) -> tuple[bool, Entry | None]:
        """The member's row by key and their rank from the mirror.

        Returns:
            (True, the entry or None when unranked), or (False, None) when the mirror
            went away meanwhile (dropped or expired) and the rank must be counted.
        """

        row = await self._row(MEMBER_POINTS, {"guild_id": guild_id, "me": user_id})
        if row is None or row.points <= 0:
            return True, None  # unranked, as on the counted path
        rank = await mirror.rank(guild_id, row.points)
        if rank is None:
            return False, None
        return True, Entry(rank, user_id, row.name, int(row.points))

    async def _my_counted_entry(
        self,
        guild_id: int | None,
        user_id: int,
        period: Period,
        topic: str | None,
        since: dt.datetime | None,
    ) -> Entry | None:
        source, params = _board(guild_id, period, topic, since)
        params["me"] = user_id
        row = await self._row(_me_sql(source), params)
        return None if row is None else _ranked_entry(row)
