"""The achievements catalogue and the rules that earn them; pure, evaluated after each answer.

`earned` only says which conditions hold now. Awards are once-only because the
database says so (the `user_achievements` primary key): the engine offers every
code that holds and the repository inserts the new ones.

Left out on purpose, because a `ProgressSnapshot` cannot tell: "10 fast answers"
(no count of fast answers is kept), time-of-day badges such as "night owl" (no
local answer time) and comebacks (no history of past streaks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from quizbot.models import Achievement

__all__ = [
    "CATALOGUE",
    "CATALOGUE_BY_CODE",
    "FAST_ANSWER_MS",
    "PERFECT_QUIZ_MIN_QUESTIONS",
    "TOPIC_MASTERY_MIN_ACCURACY",
    "TOPIC_MASTERY_MIN_ANSWERS",
    "AchievementDef",
    "ProgressSnapshot",
    "catalogue_rows",
    "earned",
    "is_perfect_quiz",
]

# A perfect quiz needs at least this many questions, so a one-question quiz is no feat.
PERFECT_QUIZ_MIN_QUESTIONS = 5
# A correct answer faster than this earns "Quick Draw".
FAST_ANSWER_MS = 3_000
# Topic mastery: at least this many answers in one topic ...
TOPIC_MASTERY_MIN_ANSWERS = 20
# ... at least this share of them correct (90%).
TOPIC_MASTERY_MIN_ACCURACY = 0.9
_MASTERY_NUM, _MASTERY_DEN = 9, 10  # the same 90%, compared in integers (no float edge)


@dataclass(frozen=True, slots=True)
class AchievementDef:
    """One catalogue entry as defined in code."""

    code: str
    name: str
    description: str
    icon: str
    xp_reward: int


class ProgressSnapshot(NamedTuple):
    """What the engine knows about a member right after an answer or a finished quiz.

    A named tuple, not a frozen dataclass: one is built for every answer, and a frozen
    dataclass's __init__ (a setattr per field) cost four times as much.
    """

    # Totals in this guild, including the answer or quiz just recorded.
    answered: int
    correct: int
    quizzes_taken: int
    answer_streak: int
    best_streak: int
    daily_streak: int
    level: int
    # The answer just given; None after a finished quiz.
    last_response_ms: int | None = None
    last_correct: bool | None = None
    # The quiz just finished (quiz_finished=False after a single answer).
    quiz_finished: bool = False
    quiz_size: int = 0
    quiz_correct: int = 0
    # Perfect quizzes so far (see `is_perfect_quiz`).
    perfect_quizzes: int = 0
    # The member's best qualifying topic: answers and correct answers in it.
    topic_answered: int = 0
    topic_correct: int = 0
    # Distinct topics with at least one correct answer.
    topics_with_correct: int = 0


def is_perfect_quiz(size: int, correct: int) -> bool:
    """Whether a finished quiz counts as perfect.

    Args:
        size: questions in the quiz.
        correct: the member's correct answers in it.

    Returns:
        True with at least `PERFECT_QUIZ_MIN_QUESTIONS` questions, all answered correctly.
    """
    return size >= PERFECT_QUIZ_MIN_QUESTIONS and correct >= size


def _perfect_now(s: ProgressSnapshot) -> bool:
    return s.quiz_finished and is_perfect_quiz(s.quiz_size, s.quiz_correct)


def _streak(s: ProgressSnapshot) -> int:
    # best_streak is kept with answer_streak, but take both in case one lags.
    return max(s.answer_streak, s.best_streak)


def _mastered_topic(s: ProgressSnapshot) -> bool:
    return (
        s.topic_answered >= TOPIC_MASTERY_MIN_ANSWERS
        and s.topic_correct * _MASTERY_DEN >= s.topic_answered * _MASTERY_NUM
    )


def _fast_correct(s: ProgressSnapshot) -> bool:
    return (
        s.last_correct is True
        and s.last_response_ms is not None
        and 0 <= s.last_response_ms < FAST_ANSWER_MS
    )


_Rule = Callable[[ProgressSnapshot], bool]

# One list for both the catalogue and its rules, so neither can drift from the other.
# Order is the display order (/achievements): first steps, streaks, volume, mastery.
_ENTRIES: tuple[tuple[AchievementDef, _Rule], ...] = (
    (
        AchievementDef("first_quiz", "First Steps", "Finish your first quiz.", "🎒", 10),
        lambda s: s.quizzes_taken >= 1,
    ),
    (
        AchievementDef("first_correct", "Off the Mark", "Answer a question correctly.", "✅", 10),
        lambda s: s.correct >= 1,
    ),
    (
        AchievementDef(
            "quick_draw",
            "Quick Draw",
            f"Answer correctly in under {FAST_ANSWER_MS // 1000} seconds.",
            "⚡",
            25,
        ),
        _fast_correct,
    ),
    (
        AchievementDef(
            "perfect_quiz",
            "Flawless",
            f"Finish a quiz of {PERFECT_QUIZ_MIN_QUESTIONS}+ questions with every answer right.",
            "💯",
            50,
        ),
        lambda s: s.perfect_quizzes >= 1 or _perfect_now(s),
    ),
    (
        AchievementDef(
            "perfect_quiz_3",
            "Hat Trick",
            "Finish 3 perfect quizzes.",
            "🎩",
            100,
        ),
        lambda s: s.perfect_quizzes >= 3,
    ),
    (
        AchievementDef("streak_5", "On a Roll", "Answer 5 questions in a row correctly.", "🔥", 25),
        lambda s: _streak(s) >= 5,
    ),
    (
        AchievementDef(
            "streak_10", "Unstoppable", "Answer 10 questions in a row correctly.", "🚀", 50
        ),
        lambda s: _streak(s) >= 10,
    ),
    (
        AchievementDef(
            "streak_25", "Untouchable", "Answer 25 questions in a row correctly.", "🌟", 150
        ),
        lambda s: _streak(s) >= 25,
    ),
    (
        AchievementDef("daily_3", "Habit Forming", "Play on 3 days in a row.", "📅", 25),
        lambda s: s.daily_streak >= 3,
    ),
    (
        AchievementDef("daily_7", "Week Warrior", "Play every day for a week.", "🗓️", 75),
        lambda s: s.daily_streak >= 7,
    ),
    (
        AchievementDef("daily_30", "Devoted", "Play every day for 30 days.", "🏆", 300),
        lambda s: s.daily_streak >= 30,
    ),
    (
        AchievementDef("answers_100", "Centurion", "Answer 100 questions.", "💪", 50),
        lambda s: s.answered >= 100,
    ),
    (
        AchievementDef("answers_500", "Scholar", "Answer 500 questions.", "📚", 150),
        lambda s: s.answered >= 500,
    ),
    (
        AchievementDef("answers_1000", "Sage", "Answer 1,000 questions.", "🦉", 300),
        lambda s: s.answered >= 1000,
    ),
    (
        AchievementDef("correct_100", "Sharp Mind", "Answer 100 questions correctly.", "🎯", 75),
        lambda s: s.correct >= 100,
    ),
    (
        AchievementDef("quizzes_10", "Regular", "Finish 10 quizzes.", "🎲", 50),
        lambda s: s.quizzes_taken >= 10,
    ),
    (
        AchievementDef("quizzes_50", "Quiz Veteran", "Finish 50 quizzes.", "🎖️", 200),
        lambda s: s.quizzes_taken >= 50,
    ),
    (
        AchievementDef(
            "topic_master",
            "Topic Master",
            f"Answer {TOPIC_MASTERY_MIN_ANSWERS}+ questions in one topic "
            f"with at least {TOPIC_MASTERY_MIN_ACCURACY:.0%} right.",
            "🧠",
            150,
        ),
        _mastered_topic,
    ),
    (
        AchievementDef(
            "polymath", "Polymath", "Answer correctly in 5 different topics.", "🌍", 100
        ),
        lambda s: s.topics_with_correct >= 5,
    ),
    (
        AchievementDef("level_5", "Rising Star", "Reach level 5.", "⭐", 50),
        lambda s: s.level >= 5,
    ),
    (
        AchievementDef("level_10", "Luminary", "Reach level 10.", "👑", 150),
        lambda s: s.level >= 10,
    ),
)

CATALOGUE: tuple[AchievementDef, ...] = tuple(definition for definition, _ in _ENTRIES)
CATALOGUE_BY_CODE: Mapping[str, AchievementDef] = MappingProxyType({a.code: a for a in CATALOGUE})


def earned(snapshot: ProgressSnapshot) -> list[str]:
    """Codes of every achievement whose condition holds now.

    Already-held codes are included: the caller (or the database's once-only key)
    filters them, so this stays a pure function of the snapshot.

    Args:
        snapshot: the member's progress right after an answer or a finished quiz.

    Returns:
        Codes in catalogue order.
    """
    return [definition.code for definition, rule in _ENTRIES if rule(snapshot)]


def catalogue_rows() -> list[Achievement]:
    """The catalogue as model instances, for `AchievementRepository.sync_catalogue`.

    Returns:
        One unsaved `Achievement` per catalogue entry, in catalogue order.
    """
    return [
        Achievement(
            code=a.code,
            name=a.name,
            description=a.description,
            icon=a.icon,
            xp_reward=a.xp_reward,
        )
        for a in CATALOGUE
    ]
