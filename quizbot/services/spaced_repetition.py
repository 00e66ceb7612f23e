"""Spaced-repetition scheduling: every question a member answers becomes a review
card, scheduled with FSRS (the algorithm Anki uses).

Cards are written when a quiz ends, in the transaction that ends it (the answers and
their cards come with the statement that ends the quiz; the new cards go with the
statement that counts the quiz for its players), so the answer path stays one write. A wrong answer
brings a question back within days; right answers push it further out each time,
further when the answer came quickly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import fsrs

from quizbot.repositories.reviews import CardState

# Within this share of the time limit a right answer counts as easy; past the
# second share, as hard (recalled, with effort).
EASY_WITHIN, HARD_AFTER = 0.25, 0.75


def rating_for(correct: bool, response_ms: int | None, time_limit_s: int) -> fsrs.Rating:
    """How well a member recalled a question, from correctness and speed."""
    if not correct:
        return fsrs.Rating.Again
    if response_ms is None or time_limit_s <= 0:
        return fsrs.Rating.Good
    share = response_ms / (time_limit_s * 1000)
    if share <= EASY_WITHIN:
        return fsrs.Rating.Easy
    if share >= HARD_AFTER:
        return fsrs.Rating.Hard
    return fsrs.Rating.Good


class ReviewScheduler:
    """FSRS without learning steps: a quiz answer is a review, not a flashcard drill."""

    def __init__(self, *, fuzz: bool = True) -> None:
        # Fuzzing spreads reviews so that a quiz's cards do not all fall due together;
        # tests turn it off to get exact intervals.
        self._fsrs = fsrs.Scheduler(learning_steps=(), relearning_steps=(), enable_fuzzing=fuzz)

    def next(self, card: CardState | None, rating: fsrs.Rating, now: dt.datetime) -> CardState:
        """The card after one review at `now` (None: the first time this question is seen)."""
        if card is None or card.reps == 0:
            # card_id given: fsrs would otherwise sleep a millisecond to make one up.
            before = fsrs.Card(card_id=0)
        else:
            before = fsrs.Card(
                card_id=0,
                state=fsrs.State.Review,
                step=None,
                stability=card.stability,
                difficulty=card.difficulty,
                due=card.due,
                last_review=card.last_review,
            )
        after, _ = self._fsrs.review_card(before, rating, now)
        reps = (card.reps if card else 0) + 1
        lapses = (card.lapses if card else 0) + (rating == fsrs.Rating.Again and reps > 1)
        return CardState(
            due=after.due,
            stability=float(after.stability or 0.0),
            difficulty=float(after.difficulty or 0.0),
            reps=reps,
            lapses=int(lapses),
            last_review=now,
        )


def _card_of(row: Any) -> CardState | None:
    if row.c_reps is None:
        return None
    return CardState(
        row.c_due, row.c_stability, row.c_difficulty, row.c_reps, row.c_lapses, row.c_last_review
    )


def quiz_review_cards(
    answers: Iterable[Any], time_limit: int, scheduler: ReviewScheduler
) -> list[tuple[int, int, CardState]]:
    """A finished quiz's answers turned into review cards (written by the caller, in
    the transaction that ends the quiz: see `QuizService.finish`).

    Args:
        answers: its answers as `SessionRepository.finish_with_answers` returns them
            (`a_user_id`, `a_question_id`, `a_correct`, `a_response_ms`,
            `a_answered_at`, and the card's `c_due` ... `c_last_review`).
        time_limit: the quiz's time limit per question, in seconds.
        scheduler: FSRS.

    Returns:
        (user id, question id, the card after this answer), one per answer.
    """
    cards: list[tuple[int, int, CardState]] = []
    for row in answers:
        rating = rating_for(row.a_correct, row.a_response_ms, time_limit)
        card = scheduler.next(_card_of(row), rating, row.a_answered_at)
        cards.append((row.a_user_id, row.a_question_id, card))
    return cards
