"""Achievements: the catalogue's shape and every rule's threshold."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest

from quizbot.models import Achievement
from quizbot.services.achievements import (
    CATALOGUE,
    CATALOGUE_BY_CODE,
    PERFECT_QUIZ_MIN_QUESTIONS,
    ProgressSnapshot,
    catalogue_rows,
    earned,
    is_perfect_quiz,
)

# A member who has done nothing yet.
NOTHING = ProgressSnapshot(
    answered=0,
    correct=0,
    quizzes_taken=0,
    answer_streak=0,
    best_streak=0,
    daily_streak=0,
    level=1,
    last_response_ms=None,
    last_correct=None,
    quiz_finished=False,
    quiz_size=0,
    quiz_correct=0,
    perfect_quizzes=0,
    topic_answered=0,
    topic_correct=0,
    topics_with_correct=0,
)


def snap(**changes: Any) -> ProgressSnapshot:
    return NOTHING._replace(**changes)


# --------------------------------------------------------------------------- catalogue


def test_the_catalogue_is_big_enough_and_codes_are_unique() -> None:
    codes = [a.code for a in CATALOGUE]
    assert len(codes) >= 18
    assert len(set(codes)) == len(codes)
    assert set(CATALOGUE_BY_CODE) == set(codes)


@pytest.mark.parametrize("achievement", CATALOGUE, ids=lambda a: a.code)
def test_each_entry_fits_the_columns_and_the_style(achievement: Any) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", achievement.code) and len(achievement.code) <= 64
    assert 0 < len(achievement.name) <= 40
    assert 0 < len(achievement.description) <= 100
    assert achievement.description[0].isupper() and achievement.description.endswith(".")
    assert 0 < len(achievement.icon) <= 16
    assert unicodedata.category(achievement.icon[0]) == "So"  # an emoji, not text
    assert achievement.xp_reward > 0


def test_names_and_icons_are_distinct() -> None:
    assert len({a.name for a in CATALOGUE}) == len(CATALOGUE)
    assert len({a.icon for a in CATALOGUE}) == len(CATALOGUE)


def test_catalogue_rows_are_model_instances() -> None:
    rows = catalogue_rows()
    assert all(isinstance(r, Achievement) for r in rows)
    assert [(r.code, r.name, r.description, r.icon, r.xp_reward) for r in rows] == [
        (a.code, a.name, a.description, a.icon, a.xp_reward) for a in CATALOGUE
    ]


def test_every_achievement_can_be_earned() -> None:
    everything = ProgressSnapshot(
        answered=10_000,
        correct=10_000,
        quizzes_taken=1_000,
        answer_streak=100,
        best_streak=100,
        daily_streak=365,
        level=50,
        last_response_ms=500,
        last_correct=True,
        quiz_finished=True,
        quiz_size=10,
        quiz_correct=10,
        perfect_quizzes=10,
        topic_answered=100,
        topic_correct=100,
        topics_with_correct=11,
    )
    assert earned(everything) == [a.code for a in CATALOGUE]


def test_nothing_earns_nothing() -> None:
    assert earned(NOTHING) == []


# --------------------------------------------------------------------------- thresholds

THRESHOLDS = [
    # (code, just short, just enough)
    ("first_quiz", {"quizzes_taken": 0}, {"quizzes_taken": 1}),
    ("first_correct", {"answered": 5, "correct": 0}, {"answered": 1, "correct": 1}),
    ("quizzes_10", {"quizzes_taken": 9}, {"quizzes_taken": 10}),
    ("quizzes_50", {"quizzes_taken": 49}, {"quizzes_taken": 50}),
    ("streak_5", {"answer_streak": 4, "best_streak": 4}, {"answer_streak": 5, "best_streak": 5}),
    ("streak_10", {"best_streak": 9}, {"best_streak": 10}),
    ("streak_25", {"answer_streak": 24, "best_streak": 24}, {"answer_streak": 25}),
    ("daily_3", {"daily_streak": 2}, {"daily_streak": 3}),
    ("daily_7", {"daily_streak": 6}, {"daily_streak": 7}),
    ("daily_30", {"daily_streak": 29}, {"daily_streak": 30}),
    ("answers_100", {"answered": 99}, {"answered": 100}),
    ("answers_500", {"answered": 499}, {"answered": 500}),
    ("answers_1000", {"answered": 999}, {"answered": 1000}),
    ("correct_100", {"answered": 200, "correct": 99}, {"answered": 200, "correct": 100}),
    ("level_5", {"level": 4}, {"level": 5}),
    ("level_10", {"level": 9}, {"level": 10}),
    ("polymath", {"topics_with_correct": 4}, {"topics_with_correct": 5}),
    ("perfect_quiz_3", {"perfect_quizzes": 2}, {"perfect_quizzes": 3}),
    (
        "quick_draw",
        {"last_correct": True, "last_response_ms": 3000},
        {"last_correct": True, "last_response_ms": 2999},
    ),
    (
        "topic_master",
        {"topic_answered": 19, "topic_correct": 19},
        {"topic_answered": 20, "topic_correct": 18},
    ),
    (
        "topic_master",
        {"topic_answered": 30, "topic_correct": 26},  # 86.7%
        {"topic_answered": 30, "topic_correct": 27},  # exactly 90%
    ),
    (
        "perfect_quiz",
        {"quiz_finished": True, "quiz_size": 5, "quiz_correct": 4},
        {"quiz_finished": True, "quiz_size": 5, "quiz_correct": 5},
    ),
]


@pytest.mark.parametrize(
    ("code", "short", "enough"), THRESHOLDS, ids=[f"{t[0]}-{i}" for i, t in enumerate(THRESHOLDS)]
)
def test_thresholds(code: str, short: dict[str, Any], enough: dict[str, Any]) -> None:
    assert code in CATALOGUE_BY_CODE
    assert code not in earned(snap(**short))
    assert code in earned(snap(**enough))


def test_the_threshold_table_covers_the_catalogue() -> None:
    assert {t[0] for t in THRESHOLDS} == set(CATALOGUE_BY_CODE)


# --------------------------------------------------------------------------- rules in detail


@pytest.mark.parametrize(
    ("changes", "fast"),
    [
        ({"last_correct": True, "last_response_ms": 0}, True),
        ({"last_correct": True, "last_response_ms": 1200}, True),
        ({"last_correct": False, "last_response_ms": 1200}, False),  # fast but wrong
        ({"last_correct": None, "last_response_ms": 1200}, False),
        ({"last_correct": True, "last_response_ms": None}, False),  # after a quiz, no answer
        ({"last_correct": True, "last_response_ms": -5}, False),  # a broken clock is no feat
    ],
)
def test_quick_draw_needs_a_fast_correct_answer(changes: dict[str, Any], fast: bool) -> None:
    assert ("quick_draw" in earned(snap(**changes))) is fast


@pytest.mark.parametrize(
    ("size", "correct", "perfect"),
    [
        (PERFECT_QUIZ_MIN_QUESTIONS, PERFECT_QUIZ_MIN_QUESTIONS, True),
        (10, 10, True),
        (10, 9, False),
        (4, 4, False),  # too short to count
        (1, 1, False),
        (0, 0, False),  # an empty quiz
    ],
)
def test_is_perfect_quiz(size: int, correct: int, perfect: bool) -> None:
    assert is_perfect_quiz(size, correct) is perfect


def test_a_perfect_quiz_counts_only_when_finished() -> None:
    mid_quiz = snap(quiz_finished=False, quiz_size=5, quiz_correct=5)
    assert "perfect_quiz" not in earned(mid_quiz)


def test_a_perfect_quiz_counter_earns_it_too() -> None:
    # At the end of another quiz, a member with an earlier perfect quiz qualifies.
    later = snap(quiz_finished=True, quiz_size=10, quiz_correct=3, perfect_quizzes=1)
    assert "perfect_quiz" in earned(later)


def test_streaks_use_the_best_streak_as_well() -> None:
    # After a wrong answer the current streak is 0, but a best of 10 still counts.
    codes = earned(snap(answer_streak=0, best_streak=10))
    assert {"streak_5", "streak_10"} <= set(codes) and "streak_25" not in codes


def test_topic_mastery_needs_both_volume_and_accuracy() -> None:
    assert "topic_master" not in earned(snap(topic_answered=200, topic_correct=179))
    assert "topic_master" in earned(snap(topic_answered=200, topic_correct=180))
    assert "topic_master" not in earned(snap(topic_answered=10, topic_correct=10))


def test_the_engine_snapshot_after_an_answer() -> None:
    # What the engine passes after one correct answer of a new member.
    after_first = snap(
        answered=1,
        correct=1,
        answer_streak=1,
        best_streak=1,
        daily_streak=1,
        last_response_ms=4200,
        last_correct=True,
    )
    assert earned(after_first) == ["first_correct"]


def test_earned_is_in_catalogue_order() -> None:
    codes = earned(snap(answered=500, correct=120, level=10, quizzes_taken=12))
    order = [a.code for a in CATALOGUE]
    assert codes == sorted(codes, key=order.index)
    assert codes == [
        "first_quiz",
        "first_correct",
        "answers_100",
        "answers_500",
        "correct_100",
        "quizzes_10",
        "level_5",
        "level_10",
    ]
