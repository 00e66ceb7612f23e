"""Spaced-repetition cards: when a member should see a question again."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quizbot.models.base import Base

if TYPE_CHECKING:
    from quizbot.models.question import Question
    from quizbot.models.user import User


class ReviewCard(Base):
    """A member's memory state for one question (FSRS-style stability and difficulty)."""

    __tablename__ = "review_cards"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("questions.id", ondelete="CASCADE"), primary_key=True
    )
    due: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    stability: Mapped[float] = mapped_column(Float, server_default=text("0"))
    difficulty: Mapped[float] = mapped_column(Float, server_default=text("0"))
    reps: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    lapses: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_review: Mapped[dt.datetime | None]

    question: Mapped[Question] = relationship(lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")

    __table_args__ = (
        # "What is due for me": cards of a member by due time.
        Index("ix_review_cards_user_due", "user_id", "due"),
        Index("ix_review_cards_question_id", "question_id"),
    )
