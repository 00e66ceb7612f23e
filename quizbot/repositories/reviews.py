"""Spaced-repetition review cards."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from quizbot.models import ReviewCard
from quizbot.repositories.base import Repository


class ReviewRepository(Repository[ReviewCard]):
    """Cards of (member, question) with their next due time."""

    model_type = ReviewCard

    async def upsert(self, card: ReviewCard) -> None:
        """Insert or replace a card's scheduling state."""
        values = {
            "user_id": card.user_id,
            "question_id": card.question_id,
            "due": card.due,
            "stability": card.stability,
            "difficulty": card.difficulty,
            "reps": card.reps,
            "lapses": card.lapses,
            "last_review": card.last_review,
        }
        stmt = insert(ReviewCard).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[ReviewCard.user_id, ReviewCard.question_id],
            set_={k: stmt.excluded[k] for k in values if k not in ("user_id", "question_id")},
        )
        await self.session.execute(stmt)

    async def due(self, *, user_id: int, now: dt.datetime, limit: int = 20) -> list[ReviewCard]:
        """A member's cards due by `now`, most overdue first."""
        stmt = (
            select(ReviewCard)
            .where(ReviewCard.user_id == user_id, ReviewCard.due <= now)
            .order_by(ReviewCard.due)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())
