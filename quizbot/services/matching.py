"""Answer checking: multiple choice, true/false and free text (exact, numeric, typo-tolerant).

Pure functions: no database, no Discord, no I/O, so the engine can decide correctness
from cached question data before it writes anything.

Free-text rule, in order (the first that applies decides):

1. **Exact**: the normalised given equals a normalised form (the answer or an
   accepted alternative), or equals it once spaces are removed ("lightyear").
2. **Numeric**: when the canonical answer is a number, the leading number of the
   given is compared with every numeric form, within `tolerance`. A numeric answer
   is never fuzzy-matched: "19" is not a typo of "18".
3. **Typo**: otherwise a keyboard-aware edit distance (a dropped, extra or
   swapped letter, or a neighbouring key, costs 1; any other letter costs 2),
   word by word over the whole answer, never a part of it, within an allowance
   that grows with length: 0 up to 4 letters, 1 up to 10, 2 beyond. The first
   letter and every digit must match. See `typo_cost`, `typo_allowance`, `is_typo`.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import assert_never

from rapidfuzz.distance import OSA, Indel

from quizbot.models.enums import QuestionKind

__all__ = [
    "TYPO_ALLOWANCE_BANDS",
    "MatchResult",
    "check_answer",
    "is_typo",
    "leading_number",
    "normalise",
    "parse_number",
    "typo_allowance",
    "typo_cost",
]

# --------------------------------------------------------------------------- normalising

_ARTICLES = frozenset({"the", "a", "an"})
# Apostrophes vanish rather than becoming spaces, so "won't" = "wont" and
# "Ohm's law" = "Ohms law" (the bank lists both spellings as equivalent).
_APOSTROPHES = str.maketrans("", "", "'’‘ʼ`´′")


def normalise(text: str) -> str:
    """Reduce an answer to the form that comparisons use.

    Casefolds, strips accents (NFKD, then drops combining marks; this also turns
    "H₂O" into "h2o"), removes apostrophes, turns any other punctuation or symbol
    into a space, collapses whitespace and drops one leading article when more
    words follow (a lone "a" stays "a", so option letters and the answer "A" work).

    Args:
        text: what a player typed, or an answer form from the question bank.

    Returns:
        The normalised text, e.g. ``"  The Eiffel-Tower! "`` -> ``"eiffel tower"``.
    """
    return _normalise(text, keep_decimals=False)


@functools.lru_cache(maxsize=16384)
def _key(text: str) -> str:
    """`normalise`, except that decimal marks and minus signs of numbers are kept.

    Answers are compared on this key so that "1.4" is neither "1-4" (both
    normalise to "1 4") nor "14", and "-2" is not "2"; everything else is as
    `normalise` describes.
    """
    return _normalise(text, keep_decimals=True)


# A decimal point or comma between digits, and a minus sign starting a number.
_DECIMAL_MARK = re.compile(r"(?<=[0-9])[.,](?=[0-9])|(?<![^\s(])[-−](?=[0-9])")
_KEPT_MARK = {
    ".": "\N{ONE DOT LEADER}",
    ",": "\N{SMALL COMMA}",
    "-": "\N{SMALL HYPHEN-MINUS}",
    "−": "\N{SMALL HYPHEN-MINUS}",
}


def _normalise(text: str, *, keep_decimals: bool) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).casefold())
    if keep_decimals:
        # Swap the marks for stand-ins that survive the punctuation filter below.
        folded = _DECIMAL_MARK.sub(lambda m: _KEPT_MARK[m[0]], folded)
    kept = "".join(
        (ch if ch.isalnum() or ch in _KEPT_CHARS else " ")
        for ch in folded
        if not unicodedata.combining(ch)
    )
    words = kept.split()
    if len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


_KEPT_CHARS = frozenset(_KEPT_MARK.values())
# A space goes unless it separates two digits: "light year" = "lightyear", "sputnik 1"
# = "sputnik1", but "1 4" stays apart from "14".
_SPACE_NOT_BETWEEN_DIGITS = re.compile(r"(?<![0-9]) | (?![0-9])")


def _compact(key: str) -> str:
    return _SPACE_NOT_BETWEEN_DIGITS.sub("", key)


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Whether an answer is right, whether it needed leniency, and which form it matched."""

    correct: bool
    # True when no typo allowance or numeric tolerance was needed (only meaningful
    # when `correct`): the engine can say "close enough" for the others.
    exact: bool
    # The answer form that matched, as written in the bank (canonical or alternative).
    matched: str | None


_WRONG = MatchResult(correct=False, exact=False, matched=None)

# --------------------------------------------------------------------------- numbers

# A number as an answer is written: "1,000", "3.5", "-2", "1/2", "6.02e23", "50%".
# A comma followed by exactly three digits groups thousands; otherwise it is a
# decimal comma ("3,5"), as many players outside the UK and the US write it.
_NUMBER = re.compile(
    r"""
    (?P<sign>[+-])?\s*
    (?:
        (?P<num>[0-9]+)\s*/\s*(?P<den>[0-9]+)                   # a fraction
      | (?P<int>[0-9]{1,3}(?:,[0-9]{3}(?![0-9]))+|[0-9]+)?      # an integer part
        (?:(?P<point>[.,])(?P<frac>[0-9]+))?                    # a decimal part
        (?:[eE](?P<exp>[+-]?[0-9]+))?                           # an exponent
    )
    \s*%?                                                       # "%" is read as a unit
    """,
    re.VERBOSE,
)
# Longer digit runs are not answers; the cap also keeps int() far from its limits.
_MAX_DIGITS = 60
# Hedges players put before an estimate: "≈ 9.8", "~300", "about 40".
_APPROX = re.compile(r"^\s*(?:[≈~∼≃]|about\b|approx(?:imately)?\b\.?|around\b|roughly\b|ca\.)\s*")
_DASHES = str.maketrans({"−": "-", "–": "-", "⁄": "/", "∕": "/"})


def _number_at(text: str, *, whole_text: bool) -> Fraction | None:
    """The number at the start of `text` (already cleaned), or the whole of it."""
    m = _NUMBER.fullmatch(text) if whole_text else _NUMBER.match(text)
    if m is None:
        return None
    sign = -1 if m["sign"] == "-" else 1
    if m["num"] is not None:
        if len(m["num"]) + len(m["den"]) > _MAX_DIGITS or int(m["den"]) == 0:
            return None
        return sign * Fraction(int(m["num"]), int(m["den"]))
    whole, point, frac = m["int"], m["point"], m["frac"]
    if whole is None and frac is None:
        return None
    if len(whole or "") + len(frac or "") > _MAX_DIGITS:
        return None
    if point == "," and whole is not None and "," in whole:
        # "1,000,5" mixes both meanings of the comma: not a number we can trust.
        return None
    value = Fraction(int((whole or "0").replace(",", "")))
    if frac is not None:
        value += Fraction(int(frac), 10 ** len(frac))
    if m["exp"] is not None:
        exponent = int(m["exp"]) if len(m["exp"]) <= 4 else 10**4
        if abs(exponent) > 400:
            return None  # beyond any quiz answer; also keeps Fraction arithmetic cheap
        value *= Fraction(10) ** exponent
    return sign * value


def parse_number(text: str) -> Fraction | None:
    """Parse `text` when the whole of it is a number.

    Accepts "1,000", "3.5", "3,5", "-2", "−2", "1/2", "½", "6.02e23" and "50%"
    (the percent sign is read as a unit: "50%" is 50).

    Args:
        text: an answer form from the question bank.

    Returns:
        The exact value, or None when the text is not just a number.
    """
    cleaned = unicodedata.normalize("NFKC", text).translate(_DASHES).strip()
    return _number_at(cleaned, whole_text=True)


def leading_number(text: str) -> Fraction | None:
    """The number a player's answer starts with, ignoring hedges and units after it.

    "≈ 9.8" -> 9.8, "9.81 m/s²" -> 9.81, "about 1,000 km" -> 1000, "1/2 a litre" -> 1/2.

    Args:
        text: what the player typed.

    Returns:
        The exact value, or None when the answer does not start with a number.
    """
    cleaned = unicodedata.normalize("NFKC", text).translate(_DASHES).casefold()
    cleaned = _APPROX.sub("", cleaned, count=1).strip()
    # Whatever follows is a unit or a remark ("5m", "9.81 m/s²", "15 cm"): ignored.
    return _number_at(cleaned, whole_text=False)


def _within(given: Fraction, target: Fraction, tolerance: float | None) -> bool:
    if tolerance is None:
        # Whole-number answers must be exact; others absorb only the float noise
        # a calculator adds (0.30000000000000004 for 0.3): 1e-9 relative.
        if target.denominator == 1:
            return given == target
        return abs(given - target) <= abs(target) * Fraction(1, 10**9)
    if math.isnan(tolerance) or tolerance <= 0:
        # Bad or zero tolerance in the data: exact comparison, never a crash mid-quiz.
        return given == target
    if math.isinf(tolerance):
        return True
    # repr() gives the shortest decimal that round-trips, so 0.1 means exactly 1/10.
    return abs(given - target) <= Fraction(repr(tolerance))


# --------------------------------------------------------------------------- typos

# Allowance in weighted edits by the length of the SHORTER normalised string:
# (max length, allowance). Short words must be exact: "cat"/"car", "Iran"/"Iraq",
# "air"/"chair" are one edit apart yet different answers. From 5 to 10 characters
# one slip is allowed ("Nwton", "Einstien", "Missisippi"). Two slips only from 11:
# below that a two-edit neighbour is as likely a different term as a typo
# ("endothermic"/"exothermic", "phenomenon"/"phenomena", "Austria"/"Australia").
# Using the shorter length stops a long answer lending its allowance to a short
# given ("Austria" for "Australia" gets 1, not 2).
TYPO_ALLOWANCE_BANDS: tuple[tuple[int, int], ...] = ((4, 0), (10, 1))
_LONG_ALLOWANCE = 2

_KEY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _key_neighbours() -> frozenset[tuple[str, str]]:
    """Pairs of keys next to each other on a QWERTY keyboard (rows are staggered)."""
    pairs: set[tuple[str, str]] = set()
    for r, row in enumerate(_KEY_ROWS):
        for i, key in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            if r > 0:  # the row above is offset half a key to the left
                above = _KEY_ROWS[r - 1]
                near += [above[j] for j in (i, i + 1) if 0 <= j < len(above)]
            if r + 1 < len(_KEY_ROWS):
                below = _KEY_ROWS[r + 1]
                near += [below[j] for j in (i - 1, i) if 0 <= j < len(below)]
            for other in near:
                pairs.add((key, other))
                pairs.add((other, key))
    return frozenset(pairs)


_NEIGHBOURS = _key_neighbours()


def typo_allowance(length: int) -> int:
    """How many weighted edits a string of `length` characters may differ by.

    Args:
        length: the length of the shorter of the two normalised strings.

    Returns:
        0 up to 4 characters, 1 up to 10, 2 beyond.
    """
    for max_length, allowance in TYPO_ALLOWANCE_BANDS:
        if length <= max_length:
            return allowance
    return _LONG_ALLOWANCE


def _substitution_cost(a: str, b: str) -> int:
    if a == b:
        return 0
    # Hitting the key next door is a slip of the finger; any other letter is a
    # choice (a different word: "photon"/"proton", "Sweden"/"Swedes", "alkane"/
    # "alkene"), so it costs as much as deleting one letter and typing another.
    return 1 if (a, b) in _NEIGHBOURS else 2


def typo_cost(a: str, b: str, limit: int) -> int:
    """Weighted edit distance between two normalised strings, capped at `limit + 1`.

    The operations typing slips produce cost 1: dropping a letter, an extra
    letter, swapping two neighbouring letters, or hitting an adjacent key. Any
    other substitution costs 2. This is optimal string alignment (Damerau without
    re-editing a swapped pair) with keyboard-aware substitution costs.

    Args:
        a: one normalised string.
        b: the other.
        limit: the largest cost the caller cares about; work stops beyond it.

    Returns:
        The cost, or `limit + 1` when it exceeds `limit`.
    """
    over = limit + 1
    if abs(len(a) - len(b)) > limit:
        return over
    # rapidfuzz (C) brackets the answer cheaply: every weighted cost is at least
    # the OSA distance and at most the Indel distance (which prices any
    # substitution at 2), so the Python loop below runs only in the narrow case
    # between the two, and then only on a band of width 2 * limit + 1.
    osa = OSA.distance(a, b, score_cutoff=limit)
    if osa > limit:
        return over
    if Indel.distance(a, b, score_cutoff=limit) == osa:
        return osa
    n, m = len(a), len(b)
    inf = over
    prev2: list[int] = []
    prev = [j if j <= limit else inf for j in range(m + 1)]
    for i in range(1, n + 1):
        row = [inf] * (m + 1)
        if i <= limit:
            row[0] = i
        for j in range(max(1, i - limit), min(m, i + limit) + 1):
            best = min(
                prev[j] + 1,
                row[j - 1] + 1,
                prev[j - 1] + _substitution_cost(a[i - 1], b[j - 1]),
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, prev2[j - 2] + 1)
            row[j] = min(best, inf)
        if min(row) > limit:
            return over
        prev2, prev = prev, row
    return min(prev[m], over)


def _slip(given: str, form: str) -> int | None:
    """The weighted cost when `given` is a slip of `form` as one unit, else None."""
    if not given or not form or given[0] != form[0]:
        return None
    if [c for c in given if c.isdigit()] != [c for c in form if c.isdigit()]:
        return None
    allowance = typo_allowance(min(len(given), len(form)))
    if allowance == 0:
        return None
    cost = typo_cost(given, form, allowance)
    return cost if cost <= allowance else None


def _without_articles(words: list[str]) -> list[str]:
    # An article is followed by its noun; a final "a" is content ("Sirius A").
    return [w for i, w in enumerate(words) if w not in _ARTICLES or i == len(words) - 1]


def is_typo(given: str, form: str) -> int | None:
    """Whether `given` is a typing slip of `form` (both already normalised).

    Always compares whole answers, never a part, so "not newton" and "isaac
    newton" do not match "newton" and "chair" does not match "air". Guards:

    - the first letter must match: players see what they start with, and
      "Prussia"/"Russia", "Gambia"/"Zambia" differ only there;
    - the digits must be identical: "Sputnik 2" is not "Sputnik 1";
    - each word is judged on its own length, so a short word inside a phrase
      stays exact ("has worked" is not "had worked", "Prophase II" is not
      "Prophase I"), and the sum must fit the allowance of the whole;
    - a whole word more or less is never a typo ("O(n log n)" is not "O(log n)",
      "Prophase" is not "Prophase I"), except an article ("it raises a KeyError"
      for "it raises KeyError"). Spacing differences are settled before this,
      by the exact comparison without spaces.

    Args:
        given: the normalised answer a player typed.
        form: a normalised answer form.

    Returns:
        The weighted cost when it is a typo, else None.
    """
    given_words, form_words = given.split(), form.split()
    if not given_words or not form_words:
        return None
    if len(given_words) != len(form_words):
        given_words, form_words = _without_articles(given_words), _without_articles(form_words)
        if len(given_words) != len(form_words):
            return None
    total = 0
    for g, f in zip(given_words, form_words, strict=True):
        if g != f:
            cost = _slip(g, f)
            if cost is None:
                return None
            total += cost
    if total > typo_allowance(min(len("".join(given_words)), len("".join(form_words)))):
        return None
    # Zero: the same words once articles are dropped ("a cold front" = "cold front").
    return total


# --------------------------------------------------------------------------- kinds

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def _as_bool(text: str) -> bool | None:
    word = normalise(text)
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


def _check_true_false(given: str, answer: str) -> MatchResult:
    expected = _as_bool(answer)
    said = _as_bool(given)
    if said is None:
        return _WRONG
    if expected is None:
        # Data that is not a boolean: fall back to plain text equality.
        return _exact_forms(_key(given), (answer,))
    if said == expected:
        return MatchResult(correct=True, exact=True, matched=answer)
    return _WRONG


def _check_multiple_choice(
    given: str, answer: str, accepted: Sequence[str], choices: Sequence[str]
) -> MatchResult:
    chosen = _key(given)
    by_text = [c for c in choices if _key(c) == chosen]
    if not by_text and len(chosen) == 1:
        # A letter (A, B, ...) or a 1-based number indexes the options. Option
        # text wins over an index, so options "1", "2", "4", "8" stay unambiguous.
        index = None
        if "a" <= chosen <= "z":
            index = ord(chosen) - ord("a")
        elif "1" <= chosen <= "9":
            index = int(chosen) - 1
        if index is not None and index < len(choices):
            chosen = _key(choices[index])
    return _exact_forms(chosen, (answer, *accepted))


def _exact_forms(given: str, forms: Sequence[str]) -> MatchResult:
    """Match a keyed answer against forms exactly, or exactly up to spacing."""
    if not given:
        return _WRONG
    compact = _compact(given)
    for form in forms:
        target = _key(form)
        if target and (target == given or _compact(target) == compact):
            return MatchResult(correct=True, exact=True, matched=form)
    return _WRONG


def _check_number(given: str, forms: Sequence[str], tolerance: float | None) -> MatchResult:
    """Compare the leading number of `given` with the numeric forms: equal first, then close."""
    value = leading_number(given)
    if value is None:
        return _WRONG
    targets = [(form, parse_number(form)) for form in forms]
    for form, target in targets:
        if target == value:
            return MatchResult(correct=True, exact=True, matched=form)
    for form, target in targets:
        if target is not None and _within(value, target, tolerance):
            return MatchResult(correct=True, exact=False, matched=form)
    return _WRONG


def _check_free_text(
    given: str, answer: str, accepted: Sequence[str], tolerance: float | None
) -> MatchResult:
    forms = (answer, *accepted)
    said = _key(given)
    if not said:
        return _WRONG
    exact = _exact_forms(said, forms)
    if exact.correct:
        return exact

    if parse_number(answer) is not None:
        return _check_number(given, forms, tolerance)

    best: tuple[int, str] | None = None
    for form in forms:
        if parse_number(form) is not None:
            continue  # numbers are never typos of each other
        cost = is_typo(said, _key(form))
        if cost is not None and (best is None or cost < best[0]):
            best = (cost, form)
    if best is None:
        return _WRONG
    return MatchResult(correct=True, exact=False, matched=best[1])


def check_answer(
    kind: QuestionKind,
    given: str,
    answer: str,
    accepted: Sequence[str] = (),
    tolerance: float | None = None,
    choices: Sequence[str] = (),
) -> MatchResult:
    """Decide whether a player's answer is correct.

    Args:
        kind: how the question is answered.
        given: what the player chose or typed. Multiple choice: the option text,
            or a letter (A, B, ...) or 1-based number indexing `choices`. True/false:
            true/false/t/f/yes/no/y/n/1/0 in any case.
        answer: the canonical answer.
        accepted: other forms accepted for free text ("Ulan Bator" for "Ulaanbaatar").
        tolerance: absolute tolerance for a numeric free-text answer; None means
            exact for whole numbers and 1e-9 relative otherwise.
        choices: the options of a multiple-choice question, in display order.

    Returns:
        Correctness, whether it was exact (no typo allowance or numeric tolerance
        needed) and the form it matched (None when wrong).
    """
    match kind:
        case QuestionKind.MULTIPLE_CHOICE:
            return _check_multiple_choice(given, answer, accepted, choices)
        case QuestionKind.TRUE_FALSE:
            return _check_true_false(given, answer)
        case QuestionKind.FREE_TEXT:
            return _check_free_text(given, answer, accepted, tolerance)
        case _:
            assert_never(kind)
