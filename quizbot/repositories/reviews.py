"""Spaced-repetition review cards."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, text

from quizbot.models import Question, ReviewCard
from quizbot.repositories.base import Repository

_STATE_COLUMNS = ("due", "stability", "difficulty", "reps", "lapses", "last_review")


@dataclass(frozen=True)
class CardState:
    """Where a member stands with one question; `reps == 0` means never reviewed."""

    due: dt.datetime
    stability: float
    difficulty: float
    reps: int
    lapses: int
    last_review: dt.datetime | None


_UPSERT_CARDS = text(
    """
    INSERT INTO review_cards
        (user_id, question_id, due, stability, difficulty, reps, lapses, last_review)
    SELECT * FROM unnest(
        CAST(:user_ids AS bigint[]), CAST(:question_ids AS bigint[]),
        CAST(:due AS timestamptz[]), CAST(:stability AS float8[]),
        CAST(:difficulty AS float8[]), CAST(:reps AS integer[]),
        CAST(:lapses AS integer[]), CAST(:last_review AS timestamptz[])
    )
    ON CONFLICT (user_id, question_id) DO UPDATE SET
        due = excluded.due, stability = excluded.stability,
        difficulty = excluded.difficulty, reps = excluded.reps,
        lapses = excluded.lapses, last_review = excluded.last_review
    """
)


class ReviewRepository(Repository[ReviewCard]):
    """Cards of (member, question) with their next due time."""

    model_type = ReviewCard

    async def upsert(self, card: ReviewCard) -> None:
        """Insert or replace one card's scheduling state."""
        state = CardState(
            card.due, card.stability, card.difficulty, card.reps, card.lapses, card.last_review
        )
        await self.upsert_many([(card.user_id, card.question_id, state)])

    async def upsert_many(self, cards: Sequence[tuple[int, int, CardState]]) -> None:
        """Insert or replace many cards in one statement (each (user, question) once).

        One fixed statement over arrays, whatever the number of cards: it is prepared
        once per connection, where a multi-row VALUES list would be a new statement
        (compiled and prepared again) for every quiz size.
        """
        if not cards:
            return
        await self.session.execute(
            _UPSERT_CARDS,
            {
                "user_ids": [user_id for user_id, _q, _s in cards],
                "question_ids": [question_id for _u, question_id, _s in cards],
                "due": [state.due for _u, _q, state in cards],
                "stability": [state.stability for _u, _q, state in cards],
                "difficulty": [state.difficulty for _u, _q, state in cards],
                "reps": [state.reps for _u, _q, state in cards],
                "lapses": [state.lapses for _u, _q, state in cards],
                "last_review": [state.last_review for _u, _q, state in cards],
            },
        )

    def _visible_due(self, user_id: int, guild_id: int, now: dt.datetime) -> Any:
        # Cards of questions this guild can ask: the shared bank and its own, enabled.
        return (
            select(ReviewCard.question_id)
            .join(Question, Question.id == ReviewCard.question_id)
            .where(
                ReviewCard.user_id == user_id,
                ReviewCard.due <= now,
                Question.enabled,
                or_(Question.guild_id.is_(None), Question.guild_id == guild_id),
            )
        )

    async def due_question_ids(
        self, *, user_id: int, guild_id: int, now: dt.datetime, limit: int
    ) -> list[int]:
        """Questions due for a member in a guild, most overdue first."""
        stmt = self._visible_due(user_id, guild_id, now).order_by(ReviewCard.due).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def due_summary(
        self, *, user_id: int, guild_id: int, now: dt.datetime
    ) -> tuple[int, dt.datetime | None]:
        """How many cards are due now, and when the next one falls due (None: no cards)."""
        due_now = (
            select(func.count())
            .select_from(self._visible_due(user_id, guild_id, now).subquery())
            .scalar_subquery()
        )
        next_due = (
            select(func.min(ReviewCard.due))
            .join(Question, Question.id == ReviewCard.question_id)
            .where(
                ReviewCard.user_id == user_id,
                Question.enabled,
                or_(Question.guild_id.is_(None), Question.guild_id == guild_id),
            )
            .scalar_subquery()
        )
        row = (await self.session.execute(select(due_now, next_due))).one()
        return int(row[0]), row[1]

    async def due(self, *, user_id: int, now: dt.datetime, limit: int = 20) -> list[ReviewCard]:
        """A member's cards due by `now`, most overdue first."""
        stmt = (
            select(ReviewCard)
            .where(ReviewCard.user_id == user_id, ReviewCard.due <= now)
            .order_by(ReviewCard.due)
            .limit(limit)
        )
        return list((await self.orm.scalars(stmt)).all())
