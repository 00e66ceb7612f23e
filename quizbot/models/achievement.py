"""The achievements catalogue and the awards earned from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quizbot.models.base import Base, CreatedAt

if TYPE_CHECKING:
    from quizbot.models.guild import Guild
    from quizbot.models.user import User


class Achievement(Base):
    """A catalogue entry; the catalogue itself lives in code and is upserted at start."""

    __tablename__ = "achievements"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(300))
    icon: Mapped[str] = mapped_column(String(16), server_default=text("'🏅'"))
    xp_reward: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class UserAchievement(Base):
    """An achievement a member earned in a guild; the key makes it once only."""

    __tablename__ = "user_achievements"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    guild_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("guilds.guild_id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(
        String(64), ForeignKey("achievements.code", ondelete="CASCADE"), primary_key=True
    )
    earned_at: Mapped[CreatedAt]

    achievement: Mapped[Achievement] = relationship(lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")
    guild: Mapped[Guild] = relationship(lazy="raise")

    __table_args__ = (
        # Recent achievements of a member, newest first (stats, /achievements).
        Index("ix_user_achievements_recent", "user_id", "guild_id", text("earned_at DESC")),
    )
