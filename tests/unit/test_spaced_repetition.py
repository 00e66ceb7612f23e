"""FSRS scheduling of quiz answers: ratings from correctness and speed, intervals that grow
with right answers and shrink with wrong ones."""

from __future__ import annotations

import datetime as dt

import fsrs
import pytest

from quizbot.repositories.reviews import CardState
from quizbot.services.spaced_repetition import ReviewScheduler, rating_for

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("correct", "response_ms", "expected"),
    [
        (False, 1_000, fsrs.Rating.Again),
        (True, 2_000, fsrs.Rating.Easy),  # within a quarter of 30 s
        (True, 15_000, fsrs.Rating.Good),
        (True, 25_000, fsrs.Rating.Hard),  # past three quarters
        (True, None, fsrs.Rating.Good),
    ],
)
def test_rating_from_correctness_and_speed(
    correct: bool, response_ms: int | None, expected: fsrs.Rating
) -> None:
    assert rating_for(correct, response_ms, 30) is expected


def _days(card: CardState, since: dt.datetime) -> float:
    return (card.due - since).total_seconds() / 86400


def test_right_answers_push_the_next_review_further_out() -> None:
    scheduler = ReviewScheduler(fuzz=False)
    first = scheduler.next(None, fsrs.Rating.Good, NOW)
    assert (first.reps, first.lapses, first.last_review) == (1, 0, NOW)
    assert _days(first, NOW) >= 1
    second = scheduler.next(first, fsrs.Rating.Good, first.due)
    third = scheduler.next(second, fsrs.Rating.Good, second.due)
    assert _days(second, first.due) > _days(first, NOW)
    assert _days(third, second.due) > _days(second, first.due)
    assert third.reps == 3


def test_easy_waits_longer_than_hard() -> None:
    scheduler = ReviewScheduler(fuzz=False)
    assert _days(scheduler.next(None, fsrs.Rating.Easy, NOW), NOW) > _days(
        scheduler.next(None, fsrs.Rating.Hard, NOW), NOW
    )


def test_a_wrong_answer_after_learning_is_a_lapse_and_comes_back_soon() -> None:
    scheduler = ReviewScheduler(fuzz=False)
    learned = scheduler.next(scheduler.next(None, fsrs.Rating.Good, NOW), fsrs.Rating.Good, NOW)
    later = learned.due
    forgot = scheduler.next(learned, fsrs.Rating.Again, later)
    assert forgot.lapses == 1
    assert _days(forgot, later) < _days(learned, NOW)
    assert forgot.stability < learned.stability


def test_a_first_wrong_answer_is_not_a_lapse() -> None:
    card = ReviewScheduler(fuzz=False).next(None, fsrs.Rating.Again, NOW)
    assert (card.reps, card.lapses) == (1, 0)
