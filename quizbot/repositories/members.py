"""Guild members: registration, atomic score changes, batch awards and one-statement stats."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Integer, bindparam, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from quizbot.driver import prime_at_start
from quizbot.errors import NotFoundError
from quizbot.levels import LEVEL_SQL, level_sql
from quizbot.models import GuildMember
from quizbot.models.guild import (
    HISTOGRAM_RANK_SQL,
    PERIOD_KINDS,
    PERIOD_START_SQL,
    UTC_DAY_SQL,
)
from quizbot.repositories.base import Repository


@dataclass(frozen=True, slots=True)
class MemberDelta:
    """What to add to one member's totals; a batch may name the same member several times."""

    user_id: int
    points: int = 0
    xp: int = 0
    answered: int = 0
    correct: int = 0
    quizzes: int = 0


@dataclass(frozen=True, slots=True)
class TopicStat:
    """A member's answers in one topic."""

    topic: str
    answered: int
    correct: int

    @property
    def accuracy(self) -> float:
        """Share of correct answers, 0.0 when nothing was answered."""
        return self.correct / self.answered if self.answered else 0.0


@dataclass(frozen=True, slots=True)
class RecentAchievement:
    """An achievement shown in stats."""

    code: str
    name: str
    icon: str
    earned_at: dt.datetime


@dataclass(frozen=True, slots=True)
class MemberStats:
    """Everything /stats shows about a member, read in one statement."""

    guild_id: int
    user_id: int
    is_member: bool
    display_name: str | None
    points: int
    xp: int
    level: int
    answered: int
    correct: int
    quizzes_taken: int
    answer_streak: int
    best_streak: int
    daily_streak: int
    best_daily_streak: int
    rank: int | None
    members: int
    global_points: int
    global_level: int
    topics: list[TopicStat] = field(default_factory=list)
    recent_achievements: list[RecentAchievement] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Share of correct answers, 0.0 for a member who has not answered yet."""
        return self.correct / self.answered if self.answered else 0.0


def aggregate_deltas(deltas: Iterable[MemberDelta]) -> list[MemberDelta]:
    """One delta per member, summing repeats.

    `UPDATE ... FROM` applies a single source row per target row: with a member
    twice in the batch, PostgreSQL would silently keep one delta and drop the other.
    """
    totals: dict[int, list[int]] = {}
    for d in deltas:
        t = totals.setdefault(d.user_id, [0, 0, 0, 0, 0])
        t[0] += d.points
        t[1] += d.xp
        t[2] += d.answered
        t[3] += d.correct
        t[4] += d.quizzes
    # Sorted: concurrent batches then lock the same rows in the same order.
    return [MemberDelta(user_id, *totals[user_id]) for user_id in sorted(totals)]


def add_period_points_sql(rows: str, day: str, *, and_where: str = "") -> str:
    """An INSERT, for a data-modifying CTE, that adds each row's points to its member's
    week and month of the UTC date `day` (`member_period_points`, the rows the weekly
    and monthly boards rank).

    Args:
        rows: a FROM item aliased `r`, with columns guild_id, user_id and points; at
            most one row per member (ON CONFLICT DO UPDATE refuses to update a row twice).
        day: the answers' UTC date, in SQL over `r` (`UTC_DAY_SQL`).
        and_where: more of the WHERE clause, starting with " AND".

    A row without points (only wrong answers) writes nothing. The rows go in key order,
    so two writers sharing rows lock them in one order.
    """
    windows = ", ".join(
        f"('{kind}', {PERIOD_START_SQL[kind].format(day=day)})" for kind in PERIOD_KINDS
    )
    return f"""
        INSERT INTO member_period_points AS t (guild_id, period, starts, user_id, points)
        SELECT r.guild_id, k.period, k.starts, r.user_id, r.points
        FROM {rows}
        CROSS JOIN LATERAL (VALUES {windows}) AS k(period, starts)
        WHERE r.points > 0{and_where}
        ORDER BY r.guild_id, k.period, k.starts, r.user_id
        ON CONFLICT (guild_id, period, starts, user_id) DO UPDATE SET
            points = t.points + excluded.points"""


# For a statement that inserts one answer in a CTE `ins` (RETURNING answered_at), with
# the answer's :guild_id, :user_id, :topic, :points and :correct as parameters: its
# member's day in its topic. The member row it references may be created later in the
# same statement: foreign keys are checked at the end of the statement.
ONE_ANSWER_DAILY_POINTS = f"""
        INSERT INTO member_daily_points AS t (guild_id, day, user_id, topic, points, answers,
                                              correct)
        SELECT :guild_id, {UTC_DAY_SQL.format(at="answered_at")}, :user_id, :topic, :points, 1,
               CAST(:correct AS int)
        FROM ins
        ON CONFLICT (guild_id, day, user_id, topic) DO UPDATE SET
            points = t.points + excluded.points,
            answers = t.answers + 1,
            correct = t.correct + excluded.correct"""

# The same statement's week and month.
ONE_ANSWER_PERIOD_POINTS = add_period_points_sql(
    "(SELECT CAST(:guild_id AS bigint) AS guild_id, CAST(:user_id AS bigint) AS user_id, "
    "CAST(:points AS bigint) AS points, answered_at FROM ins) AS r",
    UTC_DAY_SQL.format(at="r.answered_at"),
)


# The guild, member and user upserts, as common table expressions: a statement that
# needs the member (a quiz's start) creates it in the same round trip. No-op writes
# when nothing changed (an upsert still locks the existing row). The member's row is
# taken before the user's, forced by `u` reading `m` (the order of a statement's CTEs
# is otherwise unspecified), because every other writer takes members before users:
# the other order could deadlock with an answer batch of the same member.
def ensure_member_ctes(only_if: str | None = None) -> str:
    """`g`, `m` and `u`; parameters :guild_id, :guild_name, :user_id, :display_name.
    With `only_if` (an SQL condition on earlier CTEs), each writes only when it holds.
    The foreign keys are checked at the end of the statement, so the order of the
    inserts does not matter to them."""
    when = "" if only_if is None else f" AND {only_if}"

    def row(columns: str) -> str:
        return f"VALUES ({columns})" if only_if is None else f"SELECT {columns} WHERE {only_if}"

    return f"""
    g AS (
        INSERT INTO guilds (guild_id, name) {row(":guild_id, :guild_name")}
        ON CONFLICT (guild_id) DO NOTHING
    ), m AS (
        INSERT INTO guild_members (guild_id, user_id, display_name)
        {row(":guild_id, :user_id, :display_name")}
        ON CONFLICT (guild_id, user_id) DO UPDATE SET display_name = excluded.display_name
        WHERE guild_members.display_name IS DISTINCT FROM excluded.display_name
        RETURNING 1
    ), u AS (
        INSERT INTO users (user_id, name)
        SELECT :user_id, :display_name WHERE (SELECT count(*) FROM m) >= 0{when}
        ON CONFLICT (user_id) DO UPDATE SET name = excluded.name
        WHERE users.name IS DISTINCT FROM excluded.name
    )"""


ENSURE_MEMBER_CTES = ensure_member_ctes()
_ENSURE_MEMBER = text(f"WITH {ENSURE_MEMBER_CTES} SELECT 1")


def ensure_member_params(
    *, guild_id: int, user_id: int, display_name: str, guild_name: str = ""
) -> dict[str, Any]:
    """The parameters of `ENSURE_MEMBER_CTES` (names are cut to the columns' length)."""
    return {
        "guild_id": guild_id,
        "guild_name": guild_name or str(guild_id),
        "user_id": user_id,
        "display_name": display_name[:100],
    }


# Member and global totals move together, in one statement, per aggregated member.
_BATCH_AWARD = text(
    f"""
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:user_ids AS bigint[]), CAST(:points AS bigint[]), CAST(:xp AS bigint[]),
            CAST(:answered AS int[]), CAST(:correct AS int[]), CAST(:quizzes AS int[])
        ) AS v(user_id, points, xp, answered, correct, quizzes)
    ), lm AS (
        -- Rows are locked in key order before they are updated, so two batches that
        -- share members wait for each other instead of deadlocking.
        SELECT gm.user_id FROM guild_members gm JOIN v ON v.user_id = gm.user_id
        WHERE gm.guild_id = :guild_id ORDER BY gm.user_id FOR NO KEY UPDATE OF gm
    ), lu AS (
        SELECT users.user_id FROM users JOIN v ON v.user_id = users.user_id
        ORDER BY users.user_id FOR NO KEY UPDATE OF users
    ), m AS (
        UPDATE guild_members gm SET
            points = gm.points + v.points,
            xp = gm.xp + v.xp,
            level = {LEVEL_SQL.format(xp="gm.xp + v.xp")},
            answered = gm.answered + v.answered,
            correct = gm.correct + v.correct,
            quizzes_taken = gm.quizzes_taken + v.quizzes,
            last_active = now()
        FROM v JOIN lm USING (user_id)
        WHERE gm.guild_id = :guild_id AND gm.user_id = v.user_id
        RETURNING gm.user_id
    ), u AS (
        UPDATE users SET
            points = users.points + v.points,
            xp = users.xp + v.xp,
            level = {LEVEL_SQL.format(xp="users.xp + v.xp")},
            last_active = now()
        FROM v JOIN lu USING (user_id)
        WHERE users.user_id = v.user_id
        RETURNING users.user_id
    )
    SELECT (SELECT count(*) FROM m) AS members, (SELECT count(*) FROM u) AS users
    """
).bindparams(
    bindparam("user_ids", type_=ARRAY(BigInteger)),
    bindparam("points", type_=ARRAY(BigInteger)),
    bindparam("xp", type_=ARRAY(BigInteger)),
    bindparam("answered", type_=ARRAY(Integer)),
    bindparam("correct", type_=ARRAY(Integer)),
    bindparam("quizzes", type_=ARRAY(Integer)),
)

# A member's answers and correct answers per topic (rows topic, answered, correct),
# summed over their days (`member_daily_points`): rows that grow with the days and
# topics they played, not with every answer as the answers themselves do.
MEMBER_TOPICS_SQL = (
    "SELECT d.topic, CAST(sum(d.answers) AS bigint) AS answered, "
    "CAST(sum(d.correct) AS bigint) AS correct FROM member_daily_points d "
    "WHERE d.user_id = {user_id} AND d.guild_id = {guild_id} GROUP BY d.topic"
)

# Stats in one statement. Every part that may be empty is a scalar sub-select or a
# LEFT JOIN, so a brand-new member still gets one row (the plan's CROSS JOIN on
# recent achievements returned none). {rank} and {members} are the member's rank (from
# the guild's kept histogram of points) and the board's size (a kept count); where a
# rank mirror answers them (quizbot.rank_mirror) they are NULL.
_STATS_SQL = f"""
    SELECT
        gm.user_id IS NOT NULL AS is_member,
        gm.display_name, gm.points, gm.xp, gm.level, gm.answered, gm.correct,
        gm.quizzes_taken, gm.answer_streak, gm.best_streak, gm.daily_streak,
        gm.best_daily_streak,
        {{rank}} AS rank,
        {{members}} AS members,
        coalesce(u.points, 0) AS global_points,
        coalesce(u.level, 1) AS global_level,
        (SELECT coalesce(json_agg(t ORDER BY t.answered DESC, t.topic), '[]'::json) FROM (
            {MEMBER_TOPICS_SQL.format(user_id="k.user_id", guild_id="k.guild_id")}
        ) t) AS topics,
        (SELECT coalesce(json_agg(r ORDER BY r.earned_at DESC), '[]'::json) FROM (
            SELECT ua.code, ac.name, ac.icon, ua.earned_at
            FROM user_achievements ua JOIN achievements ac ON ac.code = ua.code
            WHERE ua.user_id = k.user_id AND ua.guild_id = k.guild_id
            ORDER BY ua.earned_at DESC LIMIT :recent
        ) r) AS recent_achievements
    FROM (SELECT CAST(:guild_id AS bigint) AS guild_id, CAST(:user_id AS bigint) AS user_id) k
    LEFT JOIN guild_members gm ON gm.guild_id = k.guild_id AND gm.user_id = k.user_id
    LEFT JOIN users u ON u.user_id = k.user_id
    """
# Kept by triggers (Guild.ranked_members): counting took 60 ms at 1M members.
_KEPT_BOARD_SIZE = (
    "coalesce((SELECT g.ranked_members FROM guilds g WHERE g.guild_id = k.guild_id), 0)"
)
_STATS = text(
    _STATS_SQL.format(
        # The same rank and population as the leaderboard's: competition ranking (equal
        # points, equal rank) among the members who have points.
        rank=f"""CASE WHEN gm.user_id IS NULL OR gm.points <= 0 THEN NULL ELSE
            {HISTOGRAM_RANK_SQL.format(guild_id="k.guild_id", points="gm.points")} END""",
        members=_KEPT_BOARD_SIZE,
    )
)
_STATS_UNRANKED = text(
    _STATS_SQL.format(rank="CAST(NULL AS bigint)", members="CAST(NULL AS bigint)")
)


# The same stats, one part per statement: the STATS_SINGLE_STATEMENT=false path,
# kept for comparison (the benchmark's ablation) and as a fallback during rollout.
_PART_MEMBER = text(
    """
    SELECT display_name, points, xp, level, answered, correct, quizzes_taken, answer_streak,
           best_streak, daily_streak, best_daily_streak
    FROM guild_members WHERE guild_id = :guild_id AND user_id = :user_id
    """
)
_PART_RANK = text(
    "SELECT " + HISTOGRAM_RANK_SQL.format(guild_id=":guild_id", points="CAST(:points AS bigint)")
)
_PART_MEMBERS = text(
    "SELECT coalesce(max(ranked_members), 0) FROM guilds WHERE guild_id = :guild_id"
)
_PART_USER = text("SELECT points, level FROM users WHERE user_id = :user_id")
_PART_TOPICS = text(
    MEMBER_TOPICS_SQL.format(user_id=":user_id", guild_id=":guild_id")
    + " ORDER BY answered DESC, topic"
)
_PART_ACHIEVEMENTS = text(
    """
    SELECT ua.code, ac.name, ac.icon, ua.earned_at
    FROM user_achievements ua JOIN achievements ac ON ac.code = ua.code
    WHERE ua.user_id = :user_id AND ua.guild_id = :guild_id
    ORDER BY ua.earned_at DESC LIMIT :recent
    """
)

# /stats runs on the driver (`StatsService`), in one statement or by parts
# (STATS_SINGLE_STATEMENT).
prime_at_start(
    _STATS,
    _STATS_UNRANKED,
    _PART_MEMBER,
    _PART_RANK,
    _PART_MEMBERS,
    _PART_USER,
    _PART_TOPICS,
    _PART_ACHIEVEMENTS,
)


class MemberRepository(Repository[GuildMember]):
    """Per-guild progress of members."""

    model_type = GuildMember

    async def ensure(
        self, *, guild_id: int, user_id: int, display_name: str, guild_name: str = ""
    ) -> None:
        """Create the guild, user and member rows if missing and refresh the display name.

        One statement; a no-op write when nothing changed.
        """
        await self.session.execute(
            _ENSURE_MEMBER,
            ensure_member_params(
                guild_id=guild_id,
                user_id=user_id,
                display_name=display_name,
                guild_name=guild_name,
            ),
        )

    async def add_points(self, *, guild_id: int, user_id: int, points: int, xp: int = 0) -> int:
        """Atomically add to a member's points and XP (and level); returns the new points.

        `points = points + :delta` in SQL, so concurrent transactions never lose an update.

        Raises:
            NotFoundError: the member does not exist.
        """
        stmt = (
            update(GuildMember)
            .where(GuildMember.guild_id == guild_id, GuildMember.user_id == user_id)
            .values(
                points=GuildMember.points + points,
                xp=GuildMember.xp + xp,
                level=level_sql(GuildMember.xp + xp),
            )
            .returning(GuildMember.points)
        )
        new_points = (await self.session.execute(stmt)).scalar_one_or_none()
        if new_points is None:
            raise NotFoundError(f"member {user_id} of guild {guild_id} not found")
        return new_points

    async def award_batch(self, *, guild_id: int, deltas: Iterable[MemberDelta]) -> int:
        """Apply many members' deltas to guild and global totals in one statement.

        Repeats of a member are summed first (see `aggregate_deltas`).

        Returns:
            The number of members updated (members that do not exist are skipped).
        """
        rows = aggregate_deltas(deltas)
        if not rows:
            return 0
        params: dict[str, Any] = {
            "guild_id": guild_id,
            "user_ids": [r.user_id for r in rows],
            "points": [r.points for r in rows],
            "xp": [r.xp for r in rows],
            "answered": [r.answered for r in rows],
            "correct": [r.correct for r in rows],
            "quizzes": [r.quizzes for r in rows],
        }
        result = await self.session.execute(_BATCH_AWARD, params)
        return int(result.one().members)

    async def stats(
        self, *, guild_id: int, user_id: int, recent: int = 5, counts: bool = True
    ) -> MemberStats:
        """A member's comprehensive stats in one statement; zeros for a stranger.

        `counts=False` leaves out the rank and the board's size (None in the result):
        counting the members ahead is the statement's slowest part in a large guild
        (tens of milliseconds deep in a million), and a rank mirror answers both,
        consistently with each other, instead.
        """
        statement = _STATS if counts else _STATS_UNRANKED
        row = (
            await self.session.execute(
                statement, {"guild_id": guild_id, "user_id": user_id, "recent": recent}
            )
        ).one()
        return MemberStats(
            guild_id=guild_id,
            user_id=user_id,
            is_member=row.is_member,
            display_name=row.display_name,
            points=row.points or 0,
            xp=row.xp or 0,
            level=row.level or 1,
            answered=row.answered or 0,
            correct=row.correct or 0,
            quizzes_taken=row.quizzes_taken or 0,
            answer_streak=row.answer_streak or 0,
            best_streak=row.best_streak or 0,
            daily_streak=row.daily_streak or 0,
            best_daily_streak=row.best_daily_streak or 0,
            rank=row.rank,
            members=row.members or 0,  # counts=False: the caller fills it in
            global_points=row.global_points,
            global_level=row.global_level,
            topics=[TopicStat(t["topic"], t["answered"], t["correct"]) for t in row.topics],
            recent_achievements=[
                RecentAchievement(
                    a["code"], a["name"], a["icon"], dt.datetime.fromisoformat(a["earned_at"])
                )
                for a in row.recent_achievements
            ],
        )

    async def stats_by_parts(self, *, guild_id: int, user_id: int, recent: int = 5) -> MemberStats:
        """`stats` with one statement per part (six round trips): same result, for comparison."""
        keys = {"guild_id": guild_id, "user_id": user_id}
        run = self.session.execute
        member = (await run(_PART_MEMBER, keys)).one_or_none()
        rank = None
        if member is not None and member.points > 0:  # as `stats`: unranked without points
            rank = (await run(_PART_RANK, {**keys, "points": member.points})).scalar_one()
        members = (await run(_PART_MEMBERS, keys)).scalar_one()
        user = (await run(_PART_USER, keys)).one_or_none()
        topics = (await run(_PART_TOPICS, keys)).all()
        achievements = (await run(_PART_ACHIEVEMENTS, {**keys, "recent": recent})).all()
        return MemberStats(
            guild_id=guild_id,
            user_id=user_id,
            is_member=member is not None,
            display_name=member.display_name if member else None,
            points=member.points if member else 0,
            xp=member.xp if member else 0,
            level=member.level if member else 1,
            answered=member.answered if member else 0,
            correct=member.correct if member else 0,
            quizzes_taken=member.quizzes_taken if member else 0,
            answer_streak=member.answer_streak if member else 0,
            best_streak=member.best_streak if member else 0,
            daily_streak=member.daily_streak if member else 0,
            best_daily_streak=member.best_daily_streak if member else 0,
            rank=rank,
            members=members,
            global_points=user.points if user else 0,
            global_level=user.level if user else 1,
            topics=[TopicStat(t.topic, t.answered, t.correct) for t in topics],
            recent_achievements=[
                RecentAchievement(a.code, a.name, a.icon, a.earned_at) for a in achievements
            ],
        )
