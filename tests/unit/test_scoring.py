"""Scoring: points with speed and streak bonuses, XP, and the guild's scoring config."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest

from quizbot.errors import InvalidInputError
from quizbot.levels import level_for_xp
from quizbot.models.enums import Difficulty
from quizbot.services.scoring import (
    ScoreResult,
    ScoringConfig,
    round_half_up,
    score_answer,
    speed_factor,
    streak_multiplier,
)

EASY, MEDIUM, HARD = Difficulty.EASY, Difficulty.MEDIUM, Difficulty.HARD
DEFAULT = ScoringConfig()


def score(
    config: ScoringConfig = DEFAULT,
    *,
    difficulty: Difficulty = MEDIUM,
    correct: bool = True,
    response_ms: int = 0,
    time_limit_s: int = 30,
    streak_before: int = 0,
) -> ScoreResult:
    return score_answer(
        config,
        difficulty=difficulty,
        correct=correct,
        response_ms=response_ms,
        time_limit_s=time_limit_s,
        streak_before=streak_before,
    )


# --------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    assert dict(DEFAULT.base_points) == {EASY: 100, MEDIUM: 200, HARD: 300}
    assert dict(DEFAULT.xp_difficulty_multiplier) == {EASY: 1.0, MEDIUM: 1.5, HARD: 2.0}
    assert DEFAULT.speed_bonus is True
    assert (DEFAULT.streak_bonus_per_answer, DEFAULT.streak_bonus_cap) == (0.1, 0.5)
    assert (DEFAULT.xp_per_correct, DEFAULT.xp_per_answer) == (10, 2)


def test_config_is_immutable_and_hashable() -> None:
    with pytest.raises(AttributeError):
        DEFAULT.speed_bonus = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        DEFAULT.base_points[EASY] = 1  # type: ignore[index]
    assert hash(ScoringConfig()) == hash(DEFAULT)
    assert ScoringConfig() == DEFAULT


def test_a_caller_cannot_change_a_config_through_its_own_dict() -> None:
    points = {EASY: 1, MEDIUM: 2, HARD: 3}
    config = ScoringConfig(base_points=points)
    points[EASY] = 999
    assert config.base_points[EASY] == 1


# --------------------------------------------------------------------------- points


@pytest.mark.parametrize(
    ("response_ms", "time_limit_s", "points", "speed"),
    [
        (0, 30, 200, 1.0),  # instant
        (-250, 30, 200, 1.0),  # clock skew: counts as instant
        (1, 30, 200, 1 - 1 / 60_000),  # 199.9967 rounds to 200
        (15_000, 30, 150, 0.75),  # halfway
        (29_999, 30, 100, 0.5 + 1 / 60_000),  # 100.003 rounds to 100
        (30_000, 30, 100, 0.5),  # exactly at the limit: half
        (45_000, 30, 100, 0.5),  # late click: still half
        (10**9, 30, 100, 0.5),
        (7_500, 10, 125, 0.625),
        (0, 0, 200, 1.0),  # untimed: no speed component
        (99_999, 0, 200, 1.0),
        (5_000, -5, 200, 1.0),  # nonsense limit: treated as untimed
    ],
)
def test_speed(response_ms: int, time_limit_s: int, points: int, speed: float) -> None:
    result = score(response_ms=response_ms, time_limit_s=time_limit_s)
    assert result.points == points
    assert result.speed_factor == pytest.approx(speed)


@pytest.mark.parametrize(("difficulty", "points"), [(EASY, 100), (MEDIUM, 200), (HARD, 300)])
def test_base_points_by_difficulty(difficulty: Difficulty, points: int) -> None:
    assert score(difficulty=difficulty).points == points


@pytest.mark.parametrize(
    ("streak_before", "streak_after", "multiplier", "points"),
    [
        (0, 1, 1.0, 200),  # the first correct answer has no bonus
        (1, 2, 1.1, 220),
        (2, 3, 1.2, 240),
        (4, 5, 1.4, 280),
        (5, 6, 1.5, 300),  # cap reached: +50%
        (6, 7, 1.5, 300),  # ... and kept
        (99, 100, 1.5, 300),
        (-3, 1, 1.0, 200),  # a negative streak counts as none
    ],
)
def test_streak_bonus(
    streak_before: int, streak_after: int, multiplier: float, points: int
) -> None:
    result = score(streak_before=streak_before)
    assert result.streak_after == streak_after
    assert result.streak_multiplier == pytest.approx(multiplier)
    assert result.points == points


def test_speed_and_streak_multiply() -> None:
    # 300 x 0.75 x 1.3 = 292.5, rounded half up.
    result = score(difficulty=HARD, response_ms=15_000, streak_before=3)
    assert result.points == 293


def test_a_correct_answer_never_earns_less_than_half() -> None:
    for difficulty, base in DEFAULT.base_points.items():
        for ms in (0, 10_000, 29_999, 30_000, 120_000):
            assert score(difficulty=difficulty, response_ms=ms).points >= base / 2


@pytest.mark.parametrize("streak_before", [0, 1, 7, 100])
def test_a_wrong_answer(streak_before: int) -> None:
    result = score(correct=False, difficulty=HARD, streak_before=streak_before)
    assert result == ScoreResult(
        points=0, xp=2, streak_after=0, speed_factor=0.0, streak_multiplier=1.0
    )


def test_a_streak_restarts_after_a_wrong_answer() -> None:
    streak = 0
    history = []
    for correct in (True, True, True, False, True):
        result = score(correct=correct, streak_before=streak)
        streak = result.streak_after
        history.append((streak, result.points))
    assert history == [(1, 200), (2, 220), (3, 240), (0, 0), (1, 200)]


def test_no_speed_bonus_means_full_points_at_any_time() -> None:
    config = ScoringConfig(speed_bonus=False)
    assert score(config, response_ms=29_000).points == 200
    assert score(config, response_ms=29_000).speed_factor == 1.0


def test_zero_points_config() -> None:
    config = ScoringConfig(base_points={EASY: 0, MEDIUM: 0, HARD: 0})
    assert score(config, streak_before=10).points == 0


def test_no_streak_bonus() -> None:
    config = ScoringConfig(streak_bonus_per_answer=0.0)
    assert score(config, streak_before=10).points == 200


def test_a_cap_of_zero_turns_the_streak_bonus_off() -> None:
    config = ScoringConfig(streak_bonus_cap=0)
    assert score(config, streak_before=10).streak_multiplier == 1.0


# --------------------------------------------------------------------------- XP


@pytest.mark.parametrize(
    ("difficulty", "correct", "xp"),
    [
        (EASY, True, 12),  # 2 + 10 x 1
        (MEDIUM, True, 17),  # 2 + 10 x 1.5
        (HARD, True, 22),  # 2 + 10 x 2
        (EASY, False, 2),
        (HARD, False, 2),  # participation does not depend on difficulty
    ],
)
def test_xp(difficulty: Difficulty, correct: bool, xp: int) -> None:
    assert score(difficulty=difficulty, correct=correct).xp == xp


def test_speed_and_streaks_do_not_change_xp() -> None:
    slow = score(response_ms=30_000, streak_before=0)
    fast = score(response_ms=0, streak_before=10)
    assert slow.xp == fast.xp == 17


def test_xp_rounds_half_up() -> None:
    config = ScoringConfig(xp_per_correct=5, xp_difficulty_multiplier={MEDIUM: 1.5})
    assert score(config).xp == 2 + 8  # 7.5 -> 8


def test_xp_feeds_the_existing_levels() -> None:
    # 50 XP is level 2 (quizbot.levels); three correct hard answers reach it.
    xp = sum(score(difficulty=HARD, streak_before=i).xp for i in range(3))
    assert xp == 66 and level_for_xp(xp) == 2


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Fraction(0), 0),
        (Fraction(1, 2), 1),
        (Fraction(5, 2), 3),
        (Fraction(2499, 1000), 2),
        (Fraction(585, 2), 293),
        (Fraction(7, 3), 2),
    ],
)
def test_round_half_up(value: Fraction, rounded: int) -> None:
    assert round_half_up(value) == rounded


def test_rounding_is_exact_where_floats_are_not() -> None:
    # 5 x 11/12 x 1.2 is exactly 5.5, but 5 * (1 - 0.5 * 5000 / 30000) * 1.2 in
    # floats is 5.499999999999999, which would round down.
    config = ScoringConfig(base_points={EASY: 5})
    result = score(config, difficulty=EASY, response_ms=5_000, streak_before=2)
    assert result.points == 6
    assert streak_multiplier(config, streak=4) == Fraction(13, 10)


def test_speed_factor_is_exact() -> None:
    assert speed_factor(DEFAULT, response_ms=10_000, time_limit_s=30) == Fraction(5, 6)


# --------------------------------------------------------------------------- settings


def test_round_trip_of_defaults() -> None:
    assert ScoringConfig.from_settings(DEFAULT.to_settings()) == DEFAULT


def test_round_trip_of_a_custom_config() -> None:
    config = ScoringConfig(
        base_points={EASY: 50, MEDIUM: 75, HARD: 1000},
        speed_bonus=False,
        streak_bonus_per_answer=0.25,
        streak_bonus_cap=1.0,
        xp_per_correct=7,
        xp_per_answer=0,
        xp_difficulty_multiplier={EASY: 0.5, MEDIUM: 1.0, HARD: 3.0},
    )
    stored = config.to_settings()
    assert stored == {
        "base_points": {"easy": 50, "medium": 75, "hard": 1000},
        "speed_bonus": False,
        "streak_bonus_per_answer": 0.25,
        "streak_bonus_cap": 1.0,
        "xp_per_correct": 7,
        "xp_per_answer": 0,
        "xp_difficulty_multiplier": {"easy": 0.5, "medium": 1.0, "hard": 3.0},
    }
    assert ScoringConfig.from_settings(stored) == config


def test_settings_are_plain_json() -> None:
    import json

    stored = DEFAULT.to_settings()
    assert json.loads(json.dumps(stored)) == stored


def test_empty_settings_are_the_defaults() -> None:
    assert ScoringConfig.from_settings({}) == DEFAULT


def test_partial_settings_keep_the_other_defaults() -> None:
    config = ScoringConfig.from_settings(
        {"base_points": {"hard": 500}, "xp_difficulty_multiplier": {"easy": 1}}
    )
    assert dict(config.base_points) == {EASY: 100, MEDIUM: 200, HARD: 500}
    assert dict(config.xp_difficulty_multiplier) == {EASY: 1.0, MEDIUM: 1.5, HARD: 2.0}
    assert config.speed_bonus is True


def test_whole_numbers_are_accepted_where_fractions_are_allowed() -> None:
    config = ScoringConfig.from_settings({"streak_bonus_cap": 1, "streak_bonus_per_answer": 0})
    assert config.streak_bonus_cap == 1.0 and isinstance(config.streak_bonus_cap, float)
    assert ScoringConfig.from_settings(config.to_settings()) == config


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"base_points": {"hard": -1}}, "scoring.base_points.hard"),
        ({"base_points": {"easy": 1.5}}, "scoring.base_points.easy"),
        ({"base_points": {"easy": "100"}}, "scoring.base_points.easy"),
        ({"base_points": {"easy": True}}, "scoring.base_points.easy"),
        ({"base_points": {"medium": 10**9}}, "scoring.base_points.medium"),
        ({"base_points": {"extreme": 500}}, "scoring.base_points.extreme"),
        ({"base_points": [100, 200, 300]}, "scoring.base_points"),
        ({"base_points": None}, "scoring.base_points"),
        ({"speed_bonus": 1}, "scoring.speed_bonus"),
        ({"speed_bonus": "yes"}, "scoring.speed_bonus"),
        ({"streak_bonus_per_answer": -0.1}, "scoring.streak_bonus_per_answer"),
        ({"streak_bonus_per_answer": 2}, "scoring.streak_bonus_per_answer"),
        ({"streak_bonus_per_answer": "0.1"}, "scoring.streak_bonus_per_answer"),
        ({"streak_bonus_cap": -0.5}, "scoring.streak_bonus_cap"),
        ({"streak_bonus_cap": float("nan")}, "scoring.streak_bonus_cap"),
        ({"streak_bonus_cap": float("inf")}, "scoring.streak_bonus_cap"),
        ({"streak_bonus_cap": False}, "scoring.streak_bonus_cap"),
        ({"xp_per_correct": -10}, "scoring.xp_per_correct"),
        ({"xp_per_correct": 10.0}, "scoring.xp_per_correct"),
        ({"xp_per_answer": None}, "scoring.xp_per_answer"),
        ({"xp_per_answer": True}, "scoring.xp_per_answer"),
        ({"xp_difficulty_multiplier": {"hard": -2}}, "scoring.xp_difficulty_multiplier.hard"),
        ({"xp_difficulty_multiplier": {"Hard": 2}}, "scoring.xp_difficulty_multiplier.Hard"),
        ({"xp_difficulty_multiplier": 2}, "scoring.xp_difficulty_multiplier"),
        ({"speed": True}, "scoring.speed"),
        ({"base_point": {"easy": 1}}, "scoring.base_point"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        ScoringConfig.from_settings(settings)
    assert str(err.value).startswith(f"{key}:")


@pytest.mark.parametrize("settings", [None, [], "fast", 3])
def test_settings_must_be_an_object(settings: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"^scoring:"):
        ScoringConfig.from_settings(settings)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(InvalidInputError, match=r"^scoring\.streak_bonus_cap:"):
        ScoringConfig(streak_bonus_cap=-1)


def _reference_factors(
    config: ScoringConfig, response_ms: int, limit_s: int, streak: int
) -> tuple[Fraction, Fraction]:
    """The speed factor and streak multiplier as the docstrings define them, in Fractions."""
    if config.speed_bonus and limit_s > 0:
        elapsed = min(max(response_ms, 0), limit_s * 1000)
        speed = 1 - Fraction(1, 2) * Fraction(elapsed, limit_s * 1000)
    else:
        speed = Fraction(1)
    per = Fraction(repr(config.streak_bonus_per_answer))
    cap = Fraction(repr(config.streak_bonus_cap))
    return speed, 1 + min(per * max(streak - 1, 0), cap)


def _reference_points(
    config: ScoringConfig, difficulty: Difficulty, response_ms: int, limit_s: int, streak: int
) -> int:
    """The rule as written in `score_answer`'s docstring, in Fractions."""
    speed, multiplier = _reference_factors(config, response_ms, limit_s, streak)
    return math.floor(config.base_points[difficulty] * speed * multiplier + Fraction(1, 2))


@pytest.mark.parametrize(
    "config",
    [
        DEFAULT,
        ScoringConfig(base_points={EASY: 5, MEDIUM: 7, HARD: 99_999}),
        ScoringConfig(streak_bonus_per_answer=0.3, streak_bonus_cap=0.7),
        ScoringConfig(streak_bonus_per_answer=0.07, streak_bonus_cap=1 / 3),
        ScoringConfig(streak_bonus_per_answer=1.0, streak_bonus_cap=5.0, speed_bonus=False),
        ScoringConfig(streak_bonus_per_answer=0.0, streak_bonus_cap=0.0),
    ],
)
def test_points_in_integers_equal_the_rule_in_fractions(config: ScoringConfig) -> None:
    # score_answer computes in integers for speed; every case here, halves included
    # (odd base points, limits that do not divide the elapsed time), must match.
    for difficulty in (EASY, MEDIUM, HARD):
        for limit_s in (0, 7, 30):
            for response_ms in (-5, 0, 1, 333, 2_500, 6_999, 7_000, 14_321, 29_999, 40_000):
                for streak_before in (-1, 0, 1, 2, 4, 9, 60):
                    result = score(
                        config,
                        difficulty=difficulty,
                        response_ms=response_ms,
                        time_limit_s=limit_s,
                        streak_before=streak_before,
                    )
                    expected = _reference_points(
                        config, difficulty, response_ms, limit_s, max(streak_before, 0) + 1
                    )
                    assert result.points == expected, (difficulty, limit_s, response_ms)
                    speed, multiplier = _reference_factors(
                        config, response_ms, limit_s, result.streak_after
                    )
                    assert result.speed_factor == float(speed)
                    assert result.streak_multiplier == float(multiplier)
                    assert (
                        speed_factor(config, response_ms=response_ms, time_limit_s=limit_s) == speed
                    )
                    assert streak_multiplier(config, streak=result.streak_after) == multiplier
