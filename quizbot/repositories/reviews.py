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


# Many cards in one statement; its parameters come from `card_params`. Also a CTE of the
# statement that ends a quiz's bookkeeping (`QuizService.finish`).
UPSERT_CARDS_SQL = """
    INSERT INTO review_cards
        (user_id, question_id, due, stability, difficulty, reps, lapses, last_review)
    SELECT * FROM unnest(
        CAST(:card_user_ids AS bigint[]), CAST(:card_question_ids AS bigint[]),
        CAST(:card_due AS timestamptz[]), CAST(:card_stability AS float8[]),
        CAST(:card_difficulty AS float8[]), CAST(:card_reps AS integer[]),
        CAST(:card_lapses AS integer[]), CAST(:card_last_review AS timestamptz[])
    )
    ON CONFLICT (user_id, question_id) DO UPDATE SET
        due = excluded.due, stability = excluded.stability,
        difficulty = excluded.difficulty, reps = excluded.reps,
        lapses = excluded.lapses, last_review = excluded.last_review
"""
_UPSERT_CARDS = text(UPSERT_CARDS_SQL)

Cards = Sequence[tuple[int, int, CardState]]  # (user id, question id, state)


def card_params(cards: Cards) -> dict[str, list[Any]]:
    """The parameters of `UPSERT_CARDS_SQL` (each (user, question) at most once)."""
    return {
        "card_user_ids": [user_id for user_id, _q, _s in cards],
        "card_question_ids": [question_id for _u, question_id, _s in cards],
        "card_due": [state.due for _u, _q, state in cards],
        "card_stability": [state.stability for _u, _q, state in cards],
        "card_difficulty": [state.difficulty for _u, _q, state in cards],
        "card_reps": [state.reps for _u, _q, state in cards],
        "card_lapses": [state.lapses for _u, _q, state in cards],
        "card_last_review": [state.last_review for _u, _q, state in cards],
    }


class ReviewRepository(Repository[ReviewCard]):
    """Cards of (member, question) with their next due time."""

    model_type = ReviewCard

    async def upsert(self, card: ReviewCard) -> None:
        """Insert or replace one card's scheduling state."""
        state = CardState(
            card.due, card.stability, card.difficulty, card.reps, card.lapses, card.last_review
        )
        await self.upsert_many([(card.user_id, card.question_id, state)])

    async def upsert_many(self, cards: Cards) -> None:
        """Insert or replace many cards in one statement (each (user, question) once).

        One fixed statement over arrays, whatever the number of cards: it is prepared
        once per connection, where a multi-row VALUES list would be a new statement
        (compiled and prepared again) for every quiz size.
        """
        if cards:
            await self.session.execute(_UPSERT_CARDS, card_params(cards))

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
