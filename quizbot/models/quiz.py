"""Quiz sessions and the answers given in them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from quizbot.models.base import Base, CreatedAt
from quizbot.models.enums import SessionMode, SessionStatus, string_enum

if TYPE_CHECKING:
    from quizbot.models.guild import Guild
    from quizbot.models.question import Question
    from quizbot.models.user import User


class QuizSession(Base):
    """A quiz being played (or played) in a channel: its filters, questions and progress."""

    __tablename__ = "quiz_sessions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    guild_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("guilds.guild_id", ondelete="CASCADE")
    )
    channel_id: Mapped[int] = mapped_column(BigInteger)
    # Who started it; in solo mode the only player.
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.user_id", ondelete="CASCADE")
    )
    mode: Mapped[SessionMode] = mapped_column(string_enum(SessionMode, "mode"))
    status: Mapped[SessionStatus] = mapped_column(
        string_enum(SessionStatus, "status"), server_default=text("'active'")
    )
    topic: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))
    # easy | medium | hard | mixed
    difficulty: Mapped[str] = mapped_column(String(16), server_default=text("'mixed'"))
    question_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    # Index into question_ids of the question being asked.
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    time_limit: Mapped[int] = mapped_column(Integer, server_default=text("30"))
    question_started_at: Mapped[dt.datetime | None]
    # The Discord message showing the current question, so a restart can resume it.
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    answered_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    correct_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    points_earned: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[CreatedAt]
    finished_at: Mapped[dt.datetime | None]

    guild: Mapped[Guild] = relationship(lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")
    answers: WriteOnlyMapped[Answer] = relationship(back_populates="session", passive_deletes=True)

    __table_args__ = (
        # A member's quiz history, newest first.
        Index("ix_quiz_sessions_user_recent", "user_id", "guild_id", text("created_at DESC")),
        # One running channel quiz per channel ...
        Index(
            "uq_quiz_sessions_active_channel",
            "channel_id",
            unique=True,
            postgresql_where=text("status = 'active' AND mode = 'channel'"),
        ),
        # ... and one running solo quiz per player per channel.
        Index(
            "uq_quiz_sessions_active_solo",
            "channel_id",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'active' AND mode = 'solo'"),
        ),
        # Restart recovery and the reaper scan only running sessions.
        Index(
            "ix_quiz_sessions_active",
            "guild_id",
            postgresql_where=text("status = 'active'"),
        ),
    )


class Answer(Base):
    """One member's answer to one question of one session."""

    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    session_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("quiz_sessions.id", ondelete="CASCADE")
    )
    question_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("questions.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.user_id", ondelete="CASCADE")
    )
    guild_id: Mapped[int] = mapped_column(BigInteger)
    # Copied from the question so the per-day roll-up (boards, per-topic stats) needs no join.
    topic: Mapped[str] = mapped_column(String(64))
    given: Mapped[str] = mapped_column(String(200))
    correct: Mapped[bool] = mapped_column(Boolean)
    response_ms: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    answered_at: Mapped[CreatedAt]

    session: Mapped[QuizSession] = relationship(back_populates="answers", lazy="raise")
    question: Mapped[Question] = relationship(back_populates="answers", lazy="raise")

    __table_args__ = (
        # A double click is a no-op: the second insert conflicts.
        UniqueConstraint("session_id", "question_id", "user_id"),
        # A member's latest answers: the no-repeat selection of a quiz's questions.
        Index("ix_answers_user_guild_recent", "user_id", "guild_id", text("answered_at DESC")),
        Index("ix_answers_question_id", "question_id"),
    )
