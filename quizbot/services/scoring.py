"""Points, XP and the answer-streak bonus, Kahoot-style; pure, so every rule is unit-tested.

Points reward winning (correctness, speed, streaks) and feed the leaderboards;
XP rewards taking part and learning (every answer, more for harder questions) and
feeds levels (`quizbot.levels.level_for_xp`). Speed and streaks never change XP,
so a slow, careful learner levels up as fast as a quick one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from fractions import Fraction
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from quizbot.errors import InvalidInputError
from quizbot.models.enums import Difficulty

__all__ = [
    "DEFAULT_BASE_POINTS",
    "DEFAULT_XP_MULTIPLIER",
    "ScoreResult",
    "ScoringConfig",
    "round_half_up",
    "score_answer",
    "speed_factor",
    "streak_multiplier",
]

DEFAULT_BASE_POINTS: Mapping[Difficulty, int] = MappingProxyType(
    {Difficulty.EASY: 100, Difficulty.MEDIUM: 200, Difficulty.HARD: 300}
)
DEFAULT_XP_MULTIPLIER: Mapping[Difficulty, float] = MappingProxyType(
    {Difficulty.EASY: 1.0, Difficulty.MEDIUM: 1.5, Difficulty.HARD: 2.0}
)

# Upper bounds keep one answer's points and XP far inside the INTEGER columns
# (answers.points) even at the largest streak multiplier: 100,000 x 1 x 6 = 600,000.
MAX_BASE_POINTS = 100_000
MAX_XP = 10_000
MAX_XP_MULTIPLIER = 100.0
MAX_STREAK_BONUS_PER_ANSWER = 1.0
MAX_STREAK_BONUS_CAP = 5.0

# A correct answer at (or after) the time limit keeps this share of the points.
SLOWEST_SPEED_FACTOR = Fraction(1, 2)

_SECTION = "scoring"
_V = TypeVar("_V", int, float)


@functools.lru_cache(maxsize=256)
def _exact(value: float) -> Fraction:
    # repr() is the shortest decimal that round-trips, so 0.1 becomes exactly 1/10
    # and 200 x 1.1 is 220, not 220.00000000000003 rounded the wrong way. Cached: a
    # guild's config has a handful of these, and parsing them again for every answer
    # was a fifth of the scoring's CPU (Fractions are immutable, so sharing is safe).
    return Fraction(repr(float(value)))


@functools.lru_cache(maxsize=256)
def _ratio(value: float) -> tuple[int, int]:
    """`_exact(value)` as (numerator, denominator), for the integer arithmetic below."""
    return _exact(value).as_integer_ratio()


def round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves up.

    Args:
        value: an exact amount of points or XP.

    Returns:
        The rounded integer (2.5 -> 3, 2.4999 -> 2).
    """
    return _round_half_up_ratio(value.numerator, value.denominator)


def _round_half_up_ratio(numerator: int, denominator: int) -> int:
    """`round_half_up(numerator / denominator)` in integers (denominator > 0):
    floor(n/d + 1/2) = floor((2n + d) / 2d)."""
    return (2 * numerator + denominator) // (2 * denominator)


@functools.lru_cache(maxsize=256)
def _bonus_xp(xp_per_correct: int, multiplier: float) -> int:
    """A correct answer's XP on top of participation, rounded half up (exact)."""
    return round_half_up(xp_per_correct * _exact(multiplier))


def _check_int(name: str, value: object, maximum: int) -> int:
    # bool is an int subclass, but `true` in JSON is not a number of points.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise InvalidInputError(f"{_SECTION}.{name}: must be a whole number from 0 to {maximum:,}")
    return value


def _check_number(name: str, value: object, maximum: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= maximum
    ):
        raise InvalidInputError(f"{_SECTION}.{name}: must be a number from 0 to {maximum:g}")
    return float(value)


def _difficulty_map(
    name: str,
    value: object,
    defaults: Mapping[Difficulty, _V],
    check: Callable[[str, object], _V],
) -> Mapping[Difficulty, _V]:
    """Validate a per-difficulty mapping; missing difficulties keep their defaults."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"{_SECTION}.{name}: must map difficulties ({', '.join(defaults)}) to values"
        )
    merged = dict(defaults)
    for raw_key, raw_value in value.items():
        try:
            difficulty = Difficulty(raw_key)
        except ValueError:
            raise InvalidInputError(
                f"{_SECTION}.{name}.{raw_key}: unknown difficulty "
                f"(expected one of {', '.join(defaults)})"
            ) from None
        merged[difficulty] = check(f"{name}.{difficulty}", raw_value)
    return MappingProxyType(merged)


@dataclass(frozen=True)
class ScoringConfig:
    """How a guild scores answers; stored under the `scoring` key of its settings."""

    base_points: Mapping[Difficulty, int] = field(default_factory=lambda: DEFAULT_BASE_POINTS)
    # Full points for an instant answer, falling linearly to half at the time limit.
    speed_bonus: bool = True
    # +10% per consecutive correct answer beyond the first ...
    streak_bonus_per_answer: float = 0.1
    # ... up to +50% in all.
    streak_bonus_cap: float = 0.5
    xp_per_correct: int = 10
    # Participation: every recorded answer earns this, right or wrong.
    xp_per_answer: int = 2
    # Scales `xp_per_correct` (not participation XP) by difficulty.
    xp_difficulty_multiplier: Mapping[Difficulty, float] = field(
        default_factory=lambda: DEFAULT_XP_MULTIPLIER
    )

    def __post_init__(self) -> None:
        """Validate every field and freeze the mappings (missing difficulties get defaults).

        Raises:
            InvalidInputError: a value has the wrong type or is out of range; the
                message names it as a settings key, e.g. ``scoring.base_points.hard``.
        """
        # Frozen dataclass: object.__setattr__ is the documented way to normalise.
        object.__setattr__(
            self,
            "base_points",
            _difficulty_map(
                "base_points",
                self.base_points,
                DEFAULT_BASE_POINTS,
                lambda n, v: _check_int(n, v, MAX_BASE_POINTS),
            ),
        )
        object.__setattr__(
            self,
            "xp_difficulty_multiplier",
            _difficulty_map(
                "xp_difficulty_multiplier",
                self.xp_difficulty_multiplier,
                DEFAULT_XP_MULTIPLIER,
                lambda n, v: _check_number(n, v, MAX_XP_MULTIPLIER),
            ),
        )
        if not isinstance(self.speed_bonus, bool):
            raise InvalidInputError(f"{_SECTION}.speed_bonus: must be true or false")
        object.__setattr__(
            self,
            "streak_bonus_per_answer",
            _check_number(
                "streak_bonus_per_answer", self.streak_bonus_per_answer, MAX_STREAK_BONUS_PER_ANSWER
            ),
        )
        object.__setattr__(
            self,
            "streak_bonus_cap",
            _check_number("streak_bonus_cap", self.streak_bonus_cap, MAX_STREAK_BONUS_CAP),
        )
        _check_int("xp_per_correct", self.xp_per_correct, MAX_XP)
        _check_int("xp_per_answer", self.xp_per_answer, MAX_XP)

    def __hash__(self) -> int:
        # The generated hash would fail on the mapping fields; hash their items instead.
        return hash(
            (
                tuple(self.base_points.items()),
                self.speed_bonus,
                self.streak_bonus_per_answer,
                self.streak_bonus_cap,
                self.xp_per_correct,
                self.xp_per_answer,
                tuple(self.xp_difficulty_multiplier.items()),
            )
        )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ScoringConfig:
        """Build a config from the `scoring` section of a guild's settings JSON.

        Args:
            settings: the section's contents (what `to_settings` returns); keys
                left out keep their defaults, and so do difficulties left out of
                `base_points` or `xp_difficulty_multiplier`.

        Returns:
            The validated config.

        Raises:
            InvalidInputError: an unknown key, a wrong type or an out-of-range value;
                the message names the key, e.g. ``scoring.streak_bonus_cap``.
        """
        if not isinstance(settings, Mapping):
            raise InvalidInputError(f"{_SECTION}: must be an object of scoring settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in settings if k not in known)
        if unknown:
            raise InvalidInputError(
                f"{_SECTION}.{unknown[0]}: unknown setting (expected one of "
                f"{', '.join(sorted(known))})"
            )
        return cls(**settings)

    def to_settings(self) -> dict[str, Any]:
        """The JSON-ready `scoring` section; `from_settings` reads it back to an equal config.

        Returns:
            Every field, with difficulties as their string values.
        """
        return {
            "base_points": {str(d): p for d, p in self.base_points.items()},
            "speed_bonus": self.speed_bonus,
            "streak_bonus_per_answer": self.streak_bonus_per_answer,
            "streak_bonus_cap": self.streak_bonus_cap,
            "xp_per_correct": self.xp_per_correct,
            "xp_per_answer": self.xp_per_answer,
            "xp_difficulty_multiplier": {
                str(d): m for d, m in self.xp_difficulty_multiplier.items()
            },
        }


class ScoreResult(NamedTuple):
    """What one answer is worth: points, XP, the streak it leaves and the factors applied.

    A named tuple (one is made per answer): see `answer_batch.PendingAnswer`.
    """

    points: int
    xp: int
    streak_after: int
    # Share of the base points kept for speed: 1.0 instant ... 0.5 at the limit; 0.0 when wrong.
    speed_factor: float
    # 1.0 without a streak bonus, up to 1 + streak_bonus_cap.
    streak_multiplier: float


def _speed_ratio(config: ScoringConfig, response_ms: int, time_limit_s: int) -> tuple[int, int]:
    """`speed_factor` as (numerator, denominator), not reduced."""
    if not config.speed_bonus or time_limit_s <= 0:
        return 1, 1
    limit_ms = time_limit_s * 1000
    elapsed = min(max(response_ms, 0), limit_ms)
    # 1 - (1 - p/q) x elapsed/limit = (q x limit - (q - p) x elapsed) / (q x limit)
    p, q = SLOWEST_SPEED_FACTOR.numerator, SLOWEST_SPEED_FACTOR.denominator
    return q * limit_ms - (q - p) * elapsed, q * limit_ms


def _streak_ratio(config: ScoringConfig, streak: int) -> tuple[int, int]:
    """`streak_multiplier` as (numerator, denominator), not reduced."""
    per_n, per_d = _ratio(config.streak_bonus_per_answer)
    cap_n, cap_d = _ratio(config.streak_bonus_cap)
    steps = max(streak - 1, 0)
    # 1 + min(per x steps, cap), the comparison cross-multiplied (denominators > 0).
    if per_n * steps * cap_d <= cap_n * per_d:
        return per_d + per_n * steps, per_d
    return cap_d + cap_n, cap_d


def speed_factor(config: ScoringConfig, *, response_ms: int, time_limit_s: int) -> Fraction:
    """The share of the base points a correct answer keeps for its speed.

    Args:
        config: the guild's scoring config.
        response_ms: time from the question being shown to the answer; clamped to
            [0, limit] so a negative clock skew is instant and a late click is the slowest.
        time_limit_s: the question's time limit; 0 or less means untimed (no speed component).

    Returns:
        1 for an instant answer, falling linearly to 1/2 at the limit (exact).
    """
    return Fraction(*_speed_ratio(config, response_ms, time_limit_s))


def streak_multiplier(config: ScoringConfig, *, streak: int) -> Fraction:
    """The bonus multiplier for a run of `streak` consecutive correct answers.

    Args:
        config: the guild's scoring config.
        streak: consecutive correct answers including this one (1 = no bonus yet).

    Returns:
        1 + per_answer x (streak - 1), the bonus capped at `streak_bonus_cap` (exact).
    """
    return Fraction(*_streak_ratio(config, streak))


def score_answer(
    config: ScoringConfig,
    *,
    difficulty: Difficulty,
    correct: bool,
    response_ms: int,
    time_limit_s: int,
    streak_before: int,
) -> ScoreResult:
    """Score one answer.

    A correct answer earns base points x speed factor x streak multiplier, rounded
    half up, and never less than half the base points; a wrong one earns nothing
    and ends the streak. Every answer earns participation XP; a correct one adds
    `xp_per_correct` scaled by the difficulty multiplier (rounded half up).

    Args:
        config: the guild's scoring config.
        difficulty: the question's difficulty.
        correct: whether the answer was right.
        response_ms: time taken to answer, in milliseconds (clamped to [0, limit]).
        time_limit_s: the question's time limit in seconds (0: untimed).
        streak_before: the member's answer streak before this answer (negative counts as 0).

    Returns:
        Points, XP, the streak after this answer and the factors that were applied.
    """
    if not correct:
        return ScoreResult(
            points=0,
            xp=config.xp_per_answer,
            streak_after=0,
            speed_factor=0.0,
            streak_multiplier=1.0,
        )
    streak_after = max(streak_before, 0) + 1
    # Exact, in integers: the same values as the Fractions `speed_factor` and
    # `streak_multiplier` return, at a sixth of the CPU (this runs for every answer).
    speed_n, speed_d = _speed_ratio(config, response_ms, time_limit_s)
    streak_n, streak_d = _streak_ratio(config, streak_after)
    points = _round_half_up_ratio(
        config.base_points[difficulty] * speed_n * streak_n, speed_d * streak_d
    )
    bonus_xp = _bonus_xp(config.xp_per_correct, config.xp_difficulty_multiplier[difficulty])
    return ScoreResult(
        points=points,
        xp=config.xp_per_answer + bonus_xp,
        streak_after=streak_after,
        # int / int is correctly rounded, as Fraction's float() is.
        speed_factor=speed_n / speed_d,
        streak_multiplier=streak_n / streak_d,
    )
