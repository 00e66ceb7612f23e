"""Guilds (Discord servers) and their members' per-guild progress."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, text
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
    created_at: Mapped[CreatedAt]

    members: WriteOnlyMapped[GuildMember] = relationship(
        back_populates="guild", passive_deletes=True
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
