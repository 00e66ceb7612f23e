"""Guilds (Discord servers), their members' per-guild progress, and their points per
day and per week and month."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from quizbot.models.base import Base, CreatedAt

if TYPE_CHECKING:
    from quizbot.models.user import User


class Guild(Base):
    """A Discord server and its quiz settings (timer, scoring, channels, timezone)."""

    __tablename__ = "guilds"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # How many members have points: the size of the guild's board, which /stats shows.
    # Counting them took 60 ms at a million members; triggers on guild_members keep
    # this instead (migration a95d8780a54d), so no writer of points has to.
    ranked_members: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[CreatedAt]

    members: WriteOnlyMapped[GuildMember] = relationship(
        back_populates="guild", passive_deletes=True
    )


# Every guild's board size re-derived from its members, as the triggers keep it: for
# seeding (a bulk load in replica mode skips triggers) and repairs. (Migration
# a95d8780a54d keeps its own copy: a migration must not change when this module does.)
RANKED_MEMBERS_FROM_MEMBERS_SQL = (
    "UPDATE guilds g SET ranked_members = c.members FROM (SELECT guild_id, "
    "count(*) AS members FROM guild_members WHERE points > 0 GROUP BY guild_id) c "
    "WHERE g.guild_id = c.guild_id"
)


class GuildMember(Base):
    """A user's progress in one guild: what the guild leaderboard ranks."""

    __tablename__ = "guild_members"

    guild_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("guilds.guild_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    # Kept here so a leaderboard never needs a per-row Discord lookup.
    display_name: Mapped[str] = mapped_column(String(100))
    points: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    xp: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    level: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    answered: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    correct: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    quizzes_taken: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    answer_streak: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    best_streak: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    daily_streak: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    best_daily_streak: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_active_day: Mapped[dt.date | None] = mapped_column(Date)
    joined_at: Mapped[CreatedAt]
    last_active: Mapped[dt.datetime | None]

    guild: Mapped[Guild] = relationship(back_populates="members", lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")

    __table_args__ = (
        # Guild leaderboard: top-N, keyset pages and a member's rank, all from this index.
        Index("ix_guild_members_leaderboard", "guild_id", points.desc(), "user_id"),
        # "Delete my data" and the global profile look members up by user.
        Index("ix_guild_members_user_id", "user_id"),
    )


class GuildPointsHistogram(Base):
    """How many of a guild's members hold each number of points (members with points
    only): what a member's rank on the guild's all-time board is read from.

    A rank is one plus the members with more points. Counting them in the board's index
    took 90 ms in the middle of a million members and 150 ms at the bottom; summing the
    histogram's rows above a member's points takes one row per distinct total, which is
    never more rows than the count and far fewer where totals tie (the benchmark's large
    guild: 498 rows for a million members). Triggers on guild_members keep it, as they
    keep `Guild.ranked_members` (migration 7c2e4f1a9b3d), so no writer of points has to.
    """

    __tablename__ = "guild_points_histogram"

    # No foreign key to guilds: a guild's members leave through the triggers, which
    # empty its rows; a cascade from guilds could run before them and make the
    # members' decrements find no row.
    guild_id: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    # Never indexed, so a change of it is a HOT update (no index write).
    members: Mapped[int] = mapped_column(Integer)

    __table_args__ = (PrimaryKeyConstraint("guild_id", "points"),)


# A rank on a guild's all-time board (competition ranking: 1 + the members with more
# points), summed from the histogram; {guild_id} and {points} are SQL expressions.
# Only for points above zero, as every caller guards: the histogram holds members with
# points only, so it would miss those between zero and a lower total.
HISTOGRAM_RANK_SQL = (
    "(SELECT coalesce(sum(h.members), 0) + 1 FROM guild_points_histogram h "
    "WHERE h.guild_id = {guild_id} AND h.points > {points})"
)


# Every guild's histogram derived from its members, as the triggers keep it, into the
# empty table: for seeding (a bulk load in replica mode skips triggers) and repairs
# (after emptying it). (Migration 7c2e4f1a9b3d keeps its own copy: a migration must not
# change when this module does.)
POINTS_HISTOGRAM_FROM_MEMBERS_SQL = (
    "INSERT INTO guild_points_histogram (guild_id, points, members) "
    "SELECT guild_id, points, count(*) FROM guild_members WHERE points > 0 "
    "GROUP BY guild_id, points"
)


# The day of an answer in SQL: the UTC date of its `answered_at` (`{at}`), whatever the
# session's TimeZone, so it agrees with the boards' windows (`stats.period_start`).
UTC_DAY_SQL = "CAST(timezone('UTC', {at}) AS date)"


class MemberDailyPoints(Base):
    """A member's points and answers in one topic on one UTC day: what period boards sum,
    and (over all days) what /stats' per-topic accuracy and the end-of-quiz achievements
    read, instead of the member's whole answer history."""

    __tablename__ = "member_daily_points"

    guild_id: Mapped[int] = mapped_column(BigInteger)
    # The UTC date of the answers' `answered_at`: the boundary `stats.period_start` uses.
    day: Mapped[dt.date] = mapped_column(Date)
    user_id: Mapped[int] = mapped_column(BigInteger)
    # As copied onto the answers (never NULL there), so a topic board filters here too.
    topic: Mapped[str] = mapped_column(String(64))
    # BIGINT: one answer may be worth up to 600,000 points (scoring's upper bounds).
    points: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    answers: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Of `answers`, the correct ones.
    correct: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    __table_args__ = (
        # A guild's board for a window: the key's (guild_id, day) range, and the
        # points in the index (INCLUDE) so it is an index-only scan. The key is also
        # the ON CONFLICT target of the writes.
        PrimaryKeyConstraint("guild_id", "day", "user_id", "topic", postgresql_include=["points"]),
        # Deleting a member (or, through guild_members, a user or a guild) deletes their
        # days, as it deletes their answers.
        ForeignKeyConstraint(
            ["guild_id", "user_id"],
            ["guild_members.guild_id", "guild_members.user_id"],
            ondelete="CASCADE",
        ),
        # The global board for a window: every guild's rows of those days, index-only.
        Index(
            "ix_member_daily_points_day", "day", postgresql_include=["user_id", "topic", "points"]
        ),
        # A member's topics over all their days (/stats' per-topic accuracy, a quiz's
        # end), index-only and in topic order; and the foreign key's ON DELETE CASCADE
        # (a user's "delete my data"): without it, each deleted member would scan the
        # whole guild's rows. The INCLUDE makes reads skip the table, but an upsert
        # of wrong answers only (no points) is no longer a HOT update: about 6 µs a
        # row on the server, measured; right answers change the points, which the
        # other two indexes hold, so theirs never were.
        Index(
            "ix_member_daily_points_member_topics",
            "user_id",
            "guild_id",
            "topic",
            postgresql_include=["answers", "correct"],
        ),
    )


# The windows a member's points are kept per: the boards of this week and this month
# read one row per member from here. (Today's board sums one day of the per-day
# roll-up, at most a row per member and topic: no table of its own.)
PERIOD_KINDS = ("week", "month")
# The first day of a date's ISO week and of its month, as `stats.period_start` has them
# (through `timestamp`, not `timestamptz`: the session's TimeZone must not matter).
PERIOD_START_SQL = {
    kind: f"CAST(date_trunc('{kind}', CAST({{day}} AS timestamp)) AS date)" for kind in PERIOD_KINDS
}
# The weeks and months re-derived from the days (windows with points only), as the
# answer writes keep them: for seeding and repairs. (Migration 60e57fa0104d keeps its
# own copy: a migration must not change when this module does.)
PERIOD_POINTS_FROM_DAYS_SQL = (
    "INSERT INTO member_period_points (guild_id, period, starts, user_id, points) "
    "SELECT d.guild_id, k.period, "
    "CAST(date_trunc(k.period, CAST(d.day AS timestamp)) AS date), d.user_id, sum(d.points) "
    "FROM member_daily_points d CROSS JOIN (VALUES ('week'), ('month')) AS k(period) "
    "GROUP BY 1, 2, 3, 4 HAVING sum(d.points) > 0"
)


class MemberPeriodPoints(Base):
    """A member's points in one week or month (UTC): the ranked rows of a guild's
    weekly and monthly boards.

    The per-day roll-up holds the same sums, but a week of a guild of a million members
    is a hundred thousand rows or more to add up on every read; here the board's top
    and a member's rank are ranges of one index. Every writer of answers adds to both
    tables in the same statement, so the two always agree (tests and the benchmark's
    integrity check compare them with the answers).
    """

    __tablename__ = "member_period_points"

    guild_id: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[str] = mapped_column(String(5))  # one of PERIOD_KINDS
    # The window's first UTC day: a Monday for a week, the 1st for a month.
    starts: Mapped[dt.date] = mapped_column(Date)
    user_id: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))

    __table_args__ = (
        PrimaryKeyConstraint("guild_id", "period", "starts", "user_id"),
        CheckConstraint("period IN ('week', 'month')", name="period"),
        ForeignKeyConstraint(
            ["guild_id", "user_id"],
            ["guild_members.guild_id", "guild_members.user_id"],
            ondelete="CASCADE",
        ),
        # A window's board, best first, and the count of members ahead of one: both
        # index-only ranges (ties by user id, the boards' order).
        Index(
            "ix_member_period_points_board",
            "guild_id",
            "period",
            "starts",
            text("points DESC"),
            "user_id",
        ),
        # The foreign key's ON DELETE CASCADE ("delete my data"), as for the days.
        Index("ix_member_period_points_user_id", "user_id"),
    )
