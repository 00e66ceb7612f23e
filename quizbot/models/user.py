"""Global player profiles."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from quizbot.models.base import Base, CreatedAt


class User(Base):
    """A Discord user's global profile: totals across every guild."""

    __tablename__ = "users"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))
    points: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    xp: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    level: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[CreatedAt]
    last_active: Mapped[dt.datetime | None]

    __table_args__ = (
        # Global leaderboard: top-N and a user's rank by points, ties by id.
        Index("ix_users_points_rank", points.desc(), "user_id"),
    )
