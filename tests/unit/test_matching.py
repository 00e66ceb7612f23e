"""Answer checking: normalisation, each question kind, numbers and the typo rule."""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from quizbot.models.enums import QuestionKind
from quizbot.services.matching import (
    MatchResult,
    check_answer,
    is_typo,
    leading_number,
    normalise,
    parse_number,
    typo_allowance,
    typo_cost,
)

MC = QuestionKind.MULTIPLE_CHOICE
TF = QuestionKind.TRUE_FALSE
FREE = QuestionKind.FREE_TEXT
BANK = Path(__file__).resolve().parents[2] / "quizbot" / "data" / "questions"


def free(
    given: str, answer: str, accepted: Sequence[str] = (), tolerance: float | None = None
) -> MatchResult:
    return check_answer(FREE, given, answer, accepted, tolerance)


# --------------------------------------------------------------------------- normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  The Eiffel-Tower! ", "eiffel tower"),
        ("Mississippi", "mississippi"),
        ("  lots   of\tspace\n", "lots of space"),
        ("Hồ Chí Minh", "ho chi minh"),
        ("El Niño", "el nino"),
        ("São Paulo", "sao paulo"),
        ("Straße", "strasse"),
        ("İstanbul", "istanbul"),
        ("H₂O", "h2o"),
        ("won't", "wont"),
        ("won’t", "wont"),
        ("Ohm's law", "ohms law"),
        ("first-in, first-out", "first in first out"),
        ("O(n log n)", "o n log n"),
        ("__main__", "main"),
        ("a cold front", "cold front"),
        ("An apostrophe", "apostrophe"),
        ("the the", "the"),
        ("a", "a"),
        ("A", "a"),
        ("The", "the"),
        ("Sirius A", "sirius a"),
        ("", ""),
        ("?!...", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_normalise_drops_only_a_leading_article() -> None:
    assert normalise("Theory of the Earth") == "theory of the earth"
    assert normalise("Anode") == "anode"


# --------------------------------------------------------------------------- multiple choice

CAPITALS = ("Sydney", "Melbourne", "Canberra", "Perth")


@pytest.mark.parametrize(
    ("given", "correct"),
    [
        ("Canberra", True),
        ("  canberra ", True),
        ("CANBERRA!", True),
        ("C", True),
        ("c", True),
        ("3", True),
        ("(c)", True),
        ("A", False),
        ("1", False),
        ("Sydney", False),
        ("Canbera", False),  # no typo allowance: a choice is picked, not typed
        ("E", False),  # beyond the options
        ("5", False),
        ("", False),
    ],
)
def test_multiple_choice_by_text_letter_or_number(given: str, correct: bool) -> None:
    result = check_answer(MC, given, "Canberra", choices=CAPITALS)
    assert result.correct is correct
    assert result == (
        MatchResult(True, True, "Canberra") if correct else MatchResult(False, False, None)
    )


@pytest.mark.parametrize(
    ("given", "correct"),
    [
        ("4", True),  # option text wins over "the fourth option" (which is "8")
        ("C", True),
        ("8", False),
        ("D", False),
        ("2", False),
    ],
)
def test_multiple_choice_option_text_wins_over_an_index(given: str, correct: bool) -> None:
    assert check_answer(MC, given, "4", choices=("1", "2", "4", "8")).correct is correct


def test_multiple_choice_letter_options_are_text() -> None:
    choices = ("B", "A", "D", "C")
    assert check_answer(MC, "A", "A", choices=choices).correct
    assert not check_answer(MC, "B", "A", choices=choices).correct


def test_multiple_choice_without_choices_compares_text() -> None:
    assert check_answer(MC, "paris", "Paris").correct
    assert not check_answer(MC, "A", "Paris").correct


# --------------------------------------------------------------------------- true / false

TRUE_WORDS = ["true", "True", "TRUE", "t", "T", "yes", "Yes", "y", "Y", "1", " true. "]
FALSE_WORDS = ["false", "False", "f", "F", "no", "No!", "n", "N", "0"]


@pytest.mark.parametrize("given", TRUE_WORDS)
def test_true_false_accepts_every_spelling_of_true(given: str) -> None:
    assert check_answer(TF, given, "True") == MatchResult(True, True, "True")
    assert not check_answer(TF, given, "False").correct


@pytest.mark.parametrize("given", FALSE_WORDS)
def test_true_false_accepts_every_spelling_of_false(given: str) -> None:
    assert check_answer(TF, given, "False") == MatchResult(True, True, "False")
    assert not check_answer(TF, given, "True").correct


@pytest.mark.parametrize("given", ["", "maybe", "tru", "yess", "2", "truth", "nope"])
def test_true_false_rejects_anything_else(given: str) -> None:
    assert not check_answer(TF, given, "True").correct
    assert not check_answer(TF, given, "False").correct


# --------------------------------------------------------------------------- free text: exact


@pytest.mark.parametrize(
    ("given", "answer", "accepted", "matched"),
    [
        ("mitochondria", "Mitochondria", (), "Mitochondria"),
        ("  THE EIFFEL TOWER ", "Eiffel Tower", (), "Eiffel Tower"),
        ("eiffel-tower", "Eiffel Tower", (), "Eiffel Tower"),
        ("the nucleus", "nucleus", (), "nucleus"),
        ("lightyear", "Light-year", ("light year",), "Light-year"),  # spacing only
        ("bubble sort", "bubblesort", (), "bubblesort"),
        ("Sputnik1", "Sputnik 1", (), "Sputnik 1"),
        ("wont", "won't", (), "won't"),
        ("El Nino", "El Niño", (), "El Niño"),
        ("H2O", "H₂O", (), "H₂O"),
        ("ulan bator", "Ulaanbaatar", ("Ulan Bator", "Ulan Baatar"), "Ulan Bator"),
        ("Isaac Newton", "Newton", ("Isaac Newton",), "Isaac Newton"),
        ("g", "G", ("G2",), "G"),
    ],
)
def test_free_text_exact_forms(
    given: str, answer: str, accepted: tuple[str, ...], matched: str
) -> None:
    assert free(given, answer, accepted) == MatchResult(True, True, matched)


# --------------------------------------------------------------------------- free text: typos

ACCEPTED_TYPOS = [
    # (given, answer, why it is a slip)
    ("Missisippi", "Mississippi", "one dropped letter"),
    ("photosythesis", "photosynthesis", "one dropped letter"),
    ("Einstien", "Einstein", "two letters swapped (one edit)"),
    ("Nwton", "Newton", "one dropped letter, five letters left"),
    ("Newtom", "Newton", "m is next to n on the keyboard"),
    ("Newtonn", "Newton", "one doubled letter"),
    ("Ulaanbatar", "Ulaanbaatar", "one dropped letter"),
    ("photons", "photon", "one added letter (a one-edit plural)"),
    ("fossil", "Fossils", "one dropped letter (a one-edit singular)"),
    ("haemoglobin", "hemoglobin", "one added letter"),
    ("photosynthesys", "photosynthesis", "a far substitution costs 2: allowed from 11 letters"),
    ("Valentna Terexhkova", "Valentina Tereshkova", "one slip in each word of a long phrase"),
    ("deoxyribonucliec acid", "deoxyribonucleic acid", "a swap inside a long word"),
    ("Edwin Hubbel", "Edwin Hubble", "a swap in the second word"),
]


@pytest.mark.parametrize(("given", "answer", "why"), ACCEPTED_TYPOS)
def test_typos_are_accepted(given: str, answer: str, why: str) -> None:
    assert free(given, answer) == MatchResult(True, False, answer), why


REJECTED = [
    # (given, answer, why it must be wrong)
    ("chair", "air", "the answer inside a longer word (the classic substring bug)"),
    ("cat", "car", "short words need an exact match"),
    ("Iran", "Iraq", "short words need an exact match"),
    ("Mars", "Marss", "four letters: exact, even for an extra letter"),
    ("Austria", "Australia", "two edits in a 7-letter word"),
    ("Sweden", "Swedes", "n and s are far apart: a different word, not a slip"),
    ("Swedes", "Sweden", "the same pair the other way round"),
    ("Jupyter", "Jupiter", "y for i is a spelling choice (another proper noun), not a slip"),
    ("mitosis", "meiosis", "two edits in a 7-letter word"),
    ("mitochondrion", "mitochondria", "a Latin plural is two edits, as criterion/criteria"),
    ("phenomenon", "phenomena", "the bank asks for this very plural"),
    ("criterion", "criteria", "the bank asks for this very plural"),
    ("endothermic", "exothermic", "two edits under 11 letters: a different term"),
    ("hypotonic", "hypertonic", "a different prefix"),
    ("proton", "photon", "r for h is not a slip"),
    ("alkene", "alkane", "one vowel changes the compound"),
    ("nitrite", "nitrate", "one vowel changes the compound"),
    ("worse", "worst", "the bank's superlative question"),
    ("bitter", "better", "e and i are far apart"),
    ("swam", "swum", "the bank's past participle question"),
    ("lead", "led", "the bank's past tense question"),
    ("Russia", "Prussia", "the first letter differs"),
    ("Zambia", "Gambia", "the first letter differs"),
    ("ewton", "Newton", "the first letter is missing"),
    ("Sputnik 2", "Sputnik 1", "digits must be identical"),
    ("Prophase II", "Prophase I", "a short word inside a phrase stays exact"),
    ("has worked", "had worked", "a short word inside a phrase stays exact"),
    ("O(log n)", "O(n log n)", "a missing word is not a typo"),
    ("Sirius", "Sirius A", "a missing word is not a typo"),
    ("not newton", "Newton", "containing the answer is not giving it"),
    ("newton not", "Newton", "containing the answer is not giving it"),
    ("isaac newton", "Newton", "extra words only count when listed as accepted"),
    ("Newton Newton", "Newton", "a repeated answer"),
    ("", "Newton", "an empty answer"),
    ("   ", "Newton", "a blank answer"),
    ("?!", "Newton", "punctuation only"),
    ("a", "apple", "a lone letter"),
    ("a", "Newton", "a lone letter"),
    ("the", "the Beatles", "only an article"),
    ("ulan bator", "Ulaanbaatar", "an alternative spelling counts only when listed"),
    ("Ulan Bator", "Ulaanbaatar", "an alternative spelling counts only when listed"),
]


@pytest.mark.parametrize(("given", "answer", "why"), REJECTED)
def test_different_answers_are_rejected(given: str, answer: str, why: str) -> None:
    assert free(given, answer) == MatchResult(False, False, None), why


def test_the_typo_rule_is_symmetric_on_the_examples() -> None:
    for given, answer, _ in ACCEPTED_TYPOS:
        assert free(answer, given).correct, (answer, given)
    for given, answer, _ in REJECTED:
        if given.strip(" ?!"):
            assert not free(answer, given).correct, (answer, given)


def test_a_typo_of_an_accepted_form_reports_that_form() -> None:
    result = free("Tereshkiva", "Valentina Tereshkova", ("Tereshkova",))
    assert result == MatchResult(True, False, "Tereshkova")


def test_the_closest_form_is_reported() -> None:
    # Both forms are within reach; the one-edit form wins over the two-edit one.
    result = free("photosynthesiz", "photosynthesise", ("photosynthesis",))
    assert result == MatchResult(True, False, "photosynthesis")


def test_a_dropped_article_inside_a_phrase_is_tolerated() -> None:
    assert free("it raises KeyError", "It raises a KeyError").correct


@pytest.mark.parametrize(
    ("length", "allowance"),
    [(0, 0), (1, 0), (4, 0), (5, 1), (8, 1), (10, 1), (11, 2), (40, 2)],
)
def test_typo_allowance_bands(length: int, allowance: int) -> None:
    assert typo_allowance(length) == allowance


@pytest.mark.parametrize(
    ("a", "b", "cost"),
    [
        ("newton", "newton", 0),
        ("nwton", "newton", 1),  # deletion
        ("newtonn", "newton", 1),  # insertion
        ("enwton", "newton", 1),  # transposition
        ("newtom", "newton", 1),  # neighbouring key
        ("newtob", "newton", 1),  # b is next to n too
        ("newtop", "newton", 2),  # far key: as dear as delete + insert
        ("sweden", "swedes", 2),
        ("jupyter", "jupiter", 2),
        ("alkene", "alkane", 2),
        ("proton", "photon", 2),
        ("mitochondrion", "mitochondria", 3),  # capped: limit 2 -> 3
    ],
)
def test_typo_cost(a: str, b: str, cost: int) -> None:
    assert typo_cost(a, b, limit=2) == cost
    assert typo_cost(b, a, limit=2) == cost


def _reference_cost(a: str, b: str) -> int:
    """Unbanded, unoptimised weighted OSA, to check the fast path against."""
    from quizbot.services.matching import _substitution_cost

    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1,
                d[i][j - 1] + 1,
                d[i - 1][j - 1] + _substitution_cost(a[i - 1], b[j - 1]),
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_typo_cost_agrees_with_a_plain_implementation() -> None:
    rng = random.Random(20240601)
    alphabet = "aeinrstbm "
    for _ in range(3000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
        b = list(a)
        for _ in range(rng.randint(0, 3)):  # a few random edits keep pairs near
            op = rng.randrange(4)
            pos = rng.randint(0, len(b))
            if op == 0:
                b.insert(pos, rng.choice(alphabet))
            elif b and op == 1:
                b.pop(min(pos, len(b) - 1))
            elif b and op == 2:
                b[min(pos, len(b) - 1)] = rng.choice(alphabet)
            elif len(b) > 1 and op == 3:
                i = min(pos, len(b) - 2)
                b[i], b[i + 1] = b[i + 1], b[i]
        other = "".join(b)
        for limit in (0, 1, 2):
            assert typo_cost(a, other, limit) == min(_reference_cost(a, other), limit + 1), (
                a,
                other,
                limit,
            )


def test_is_typo_needs_normalised_input_and_whole_strings() -> None:
    assert is_typo("missisippi", "mississippi") == 1
    assert is_typo("mississippi", "mississippi") == 0
    assert is_typo("river mississippi", "mississippi") is None
    assert is_typo("", "") is None


def test_long_inputs_stay_cheap() -> None:
    # A very long paste is rejected by the length check before any distance work.
    assert not free("newton " * 600, "Newton").correct
    assert not free("x" * 4000, "Newton").correct


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", Fraction(42)),
        ("1,000", Fraction(1000)),
        ("1,000,000", Fraction(1_000_000)),
        ("1,000.5", Fraction(2001, 2)),
        ("3.5", Fraction(7, 2)),
        ("3,5", Fraction(7, 2)),  # decimal comma
        ("3,14159", Fraction(314159, 100000)),
        (".5", Fraction(1, 2)),
        ("-2", Fraction(-2)),
        ("−2", Fraction(-2)),  # U+2212 minus sign
        ("+4", Fraction(4)),
        ("1/2", Fraction(1, 2)),
        ("-3/4", Fraction(-3, 4)),
        ("½", Fraction(1, 2)),
        ("50%", Fraction(50)),
        ("6.02e23", Fraction(602) * 10**21),
        ("1E-3", Fraction(1, 1000)),
        ("０.５", Fraction(1, 2)),  # full-width digits
    ],
)
def test_parse_number(text: str, value: Fraction) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1/0",
        "1,000,5",
        "Sputnik 1",
        "44 BC",
        "O(n)",
        "1.2.3",
        "-",
        "%",
        "1e99999",
        "9" * 80,
    ],
)
def test_parse_number_rejects_non_numbers(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("≈ 9.8", Fraction(49, 5)),
        ("~300", Fraction(300)),
        ("about 1,000 km", Fraction(1000)),
        ("approx. 5", Fraction(5)),
        ("approximately 12", Fraction(12)),
        ("9.81 m/s²", Fraction(981, 100)),
        ("15 cm", Fraction(15)),
        ("5m", Fraction(5)),
        ("1/2 a litre", Fraction(1, 2)),
        ("1215 AD", Fraction(1215)),
        ("89 %", Fraction(89)),
        ("-40 degrees", Fraction(-40)),
    ],
)
def test_leading_number(text: str, value: Fraction) -> None:
    assert leading_number(text) == value


@pytest.mark.parametrize("text", ["", "about", "AD 1215", "x5", "nineteen", "one hundred"])
def test_leading_number_needs_a_number_first(text: str) -> None:
    assert leading_number(text) is None


@pytest.mark.parametrize(
    ("given", "answer", "accepted", "tolerance", "expected"),
    [
        # Whole numbers are exact by default.
        ("18", "18", (), None, MatchResult(True, True, "18")),
        ("18.0", "18", (), None, MatchResult(True, True, "18")),
        ("19", "18", (), None, MatchResult(False, False, None)),
        ("17", "18", (), None, MatchResult(False, False, None)),
        ("1000", "1,000", (), None, MatchResult(True, True, "1,000")),
        ("1,000", "1000", (), None, MatchResult(True, True, "1000")),
        ("1,024", "1024", (), None, MatchResult(True, True, "1024")),
        ("-2", "-2", (), None, MatchResult(True, True, "-2")),
        ("2", "-2", (), None, MatchResult(False, False, None)),
        ("-2", "2", (), None, MatchResult(False, False, None)),
        ("−2", "-2", (), None, MatchResult(True, True, "-2")),
        ("0.5", "1/2", (), None, MatchResult(True, True, "1/2")),
        ("50", "50%", (), None, MatchResult(True, True, "50%")),
        ("50 percent", "50%", (), None, MatchResult(True, True, "50%")),
        # Units and hedges after or before the number are fine.
        ("9.81 m/s²", "9.81", (), None, MatchResult(True, True, "9.81")),
        ("≈ 9.81", "9.81", (), None, MatchResult(True, True, "9.81")),
        ("5,730 years", "5730", (), 50, MatchResult(True, True, "5730")),
        # Non-integers: only float noise is absorbed by default.
        ("3.5", "3.5", (), None, MatchResult(True, True, "3.5")),
        ("3.5000000001", "3.5", (), None, MatchResult(True, False, "3.5")),
        ("3.51", "3.5", (), None, MatchResult(False, False, None)),
        # An explicit tolerance is absolute and inclusive.
        ("9.8", "9.81", (), 0.01, MatchResult(True, False, "9.81")),
        ("9.79", "9.81", (), 0.01, MatchResult(False, False, None)),
        ("1.5", "1.4", ("1.44",), 0.1, MatchResult(True, False, "1.4")),
        ("1.54", "1.4", ("1.44",), 0.1, MatchResult(True, False, "1.44")),
        ("5700", "5730", (), 50, MatchResult(True, False, "5730")),
        ("5780", "5730", (), 50, MatchResult(True, False, "5730")),
        ("5679", "5730", (), 50, MatchResult(False, False, None)),
        ("88.5", "89", ("89%",), 0.5, MatchResult(True, False, "89")),
        ("100", "100", (), 0, MatchResult(True, True, "100")),
        ("101", "100", (), 0, MatchResult(False, False, None)),
        # A word form is exact only; a numeric answer is never fuzzy-matched.
        ("twelve", "12", ("twelve",), None, MatchResult(True, True, "twelve")),
        ("twelv", "12", ("twelve",), None, MatchResult(False, False, None)),
        ("one hundred", "100", ("one hundred",), None, MatchResult(True, True, "one hundred")),
        # The number must come first; the decimal point is part of the number.
        ("about a hundred", "100", (), None, MatchResult(False, False, None)),
        ("14", "1.4", (), 0.1, MatchResult(False, False, None)),
        ("1-4", "1.4", (), None, MatchResult(False, False, None)),
        ("14 solar masses", "1.4", ("1.4 solar masses",), 0.1, MatchResult(False, False, None)),
        (
            "1.4 solar masses",
            "1.4",
            ("1.4 solar masses",),
            0.1,
            MatchResult(True, True, "1.4 solar masses"),
        ),
        ("", "5", (), None, MatchResult(False, False, None)),
    ],
)
def test_numeric_answers(
    given: str,
    answer: str,
    accepted: tuple[str, ...],
    tolerance: float | None,
    expected: MatchResult,
) -> None:
    assert free(given, answer, accepted, tolerance) == expected


@pytest.mark.parametrize(
    ("tolerance", "correct"),
    [(float("nan"), False), (-1.0, False), (float("inf"), True)],
)
def test_odd_tolerances_never_raise(tolerance: float, correct: bool) -> None:
    assert free("12", "10", (), tolerance).correct is correct
    assert free("10", "10", (), tolerance).correct


def test_tolerance_is_decimal_exact() -> None:
    # 0.3 as a float is 0.29999999999999998890; the comparison uses 3/10.
    assert free("1.3", "1", (), 0.3).correct
    assert not free("1.31", "1", (), 0.3).correct


def test_numbers_in_text_answers_are_never_typos() -> None:
    assert not free("1 Ceres", "2 Ceres").correct
    assert not free("G3", "G2").correct
    assert not free("1900", "Nineteen hundred").correct


# --------------------------------------------------------------------------- the question bank


def _bank() -> list[dict[str, Any]]:
    questions: list[dict[str, Any]] = []
    for path in sorted(BANK.glob("*.yaml")):
        questions.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["questions"])
    return questions


def test_every_bank_answer_is_accepted_as_written() -> None:
    for q in _bank():
        kind = QuestionKind(str(q["kind"]))
        answer = str(q["answer"])
        accepted = [str(a) for a in q.get("accepted") or []]
        choices = [str(c) for c in q.get("choices") or []]
        tolerance = q.get("tolerance")
        for form in (answer, *accepted):
            result = check_answer(kind, form, answer, accepted, tolerance, choices)
            assert result.correct and result.exact, (q["prompt"], form)


def test_which_wrong_choices_of_the_bank_would_pass_as_free_text() -> None:
    # Multiple-choice distractors are plausible wrong answers written by a person.
    # Asked as free text, these few would pass: the limits of any edit-distance rule
    # (grammar that hinges on one letter or an apostrophe; "2.0" equals 2). They are
    # buttons, so no player can type them; the list makes any change of the rule visible.
    known = {
        ("affects", "affect"),
        ("whomever", "whoever"),
        ("the students's books", "the students' books"),
        ("the Jones's house", "the Joneses' house"),
        ("the Joneses's house", "the Joneses' house"),
        ("2.0", "2"),
    }
    passed = set()
    for q in _bank():
        if q["kind"] != "multiple_choice":
            continue
        answer = str(q["answer"])
        for choice in map(str, q["choices"]):
            if normalise(choice) != normalise(answer) and free(choice, answer).correct:
                passed.add((choice, answer))
    assert passed == known
