"""The question bank: shared questions (guild_id NULL) and each guild's own."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from quizbot.models.base import Base
from quizbot.models.enums import Difficulty, QuestionKind, string_enum

if TYPE_CHECKING:
    from quizbot.models.quiz import Answer


class Question(Base):
    """One question with its answer(s) and the explanation shown after answering."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # NULL: the shared bank every guild sees; otherwise only that guild sees it.
    guild_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("guilds.guild_id", ondelete="CASCADE")
    )
    topic: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    difficulty: Mapped[Difficulty] = mapped_column(string_enum(Difficulty, "difficulty"))
    kind: Mapped[QuestionKind] = mapped_column(string_enum(QuestionKind, "kind"))
    prompt: Mapped[str] = mapped_column(Text)
    # Multiple choice: the options in authoring order (the answer is one of them).
    choices: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    answer: Mapped[str] = mapped_column(String(200))
    # Other spellings accepted for free-text answers.
    accepted: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    # Absolute tolerance for numeric free-text answers.
    tolerance: Mapped[float | None] = mapped_column(Float)
    explanation: Mapped[str] = mapped_column(Text, server_default=text("''"))
    source: Mapped[str] = mapped_column(String(32), server_default=text("'admin'"))
    # sha256 of the normalised prompt: an import skips a question the scope already has.
    content_hash: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))

    answers: WriteOnlyMapped[Answer] = relationship(back_populates="question", passive_deletes=True)

    __table_args__ = (
        # Question pools: enabled questions by topic, difficulty and category.
        Index(
            "ix_questions_pool",
            "topic",
            "difficulty",
            "category",
            postgresql_where=text("enabled"),
        ),
        # A guild's own questions (admin listing, export, cascade).
        Index("ix_questions_guild_id", "guild_id"),
        # One copy of a question per scope; NULLS NOT DISTINCT makes the shared
        # bank (guild_id NULL) a scope of its own.
        Index(
            "uq_questions_scope_hash",
            "guild_id",
            "content_hash",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )
