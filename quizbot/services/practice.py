"""Generated practice questions: arithmetic, fractions, percentages and equations.

Every question is computed exactly with `fractions.Fraction` and comes with a worked
explanation. Generation is deterministic (a seeded `random.Random`), so the shared
bank is the same on every machine and seeding twice inserts nothing new.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from quizbot.models import Difficulty, QuestionKind
from quizbot.services.question_formats import QuestionRecord

TOPIC = "Mathematics Practice"
SOURCE = "practice"
CATEGORIES = ("Arithmetic", "Fractions", "Percentages", "Equations")
# Share of questions asked as multiple choice; the rest are typed answers.
MULTIPLE_CHOICE_SHARE = 0.25

EASY, MEDIUM, HARD = Difficulty.EASY, Difficulty.MEDIUM, Difficulty.HARD


@dataclass(frozen=True)
class Problem:
    """One generated problem, before it becomes a question."""

    prompt: str
    value: Fraction  # the exact answer
    explanation: str  # worked solution ending with the answer
    difficulty: Difficulty
    wrong: tuple[Fraction, ...]  # plausible mistakes, offered as wrong choices
    places: int | None = None  # the answer is `value` rounded to this many decimal places
    as_fraction: bool = False  # answer a fraction in lowest terms ("3/2", not "1.5")
    accept_decimal: bool = True  # also accept the exact decimal ("0.5" for "1/2")
    suffix: str = ""  # unit written after the number ("%")


Template = Callable[[random.Random], Problem]


def generate_practice_questions(count: int = 240, seed: int = 2024) -> list[QuestionRecord]:
    """Deterministic practice questions, cycling through the four categories.

    Args:
        count: how many questions (prompts are all distinct).
        seed: the same seed always gives the same questions.

    Returns:
        The questions, topic "Mathematics Practice", source "practice".
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    records = []
    for number in range(count):
        category = CATEGORIES[number % len(CATEGORIES)]
        templates = TEMPLATES[category]
        template = templates[(number // len(CATEGORIES)) % len(templates)]
        problem = template(rng)
        while problem.prompt in seen:  # the same prompt twice would be one question
            problem = template(rng)
        seen.add(problem.prompt)
        multiple_choice = rng.random() < MULTIPLE_CHOICE_SHARE
        records.append(_record(category, problem, multiple_choice=multiple_choice))
    return records


# --------------------------------------------------------------------------- formatting


def fraction_text(value: Fraction) -> str:
    """A fraction in lowest terms as people type it: 3/2, -1/4, or 5 for a whole number."""
    return str(value.numerator) if value.denominator == 1 else f"{value}"


def decimal_text(value: Fraction) -> str | None:
    """The exact decimal of a terminating fraction ("0.375"), else None."""
    places = _decimal_places(value)
    if places is None:
        return None
    text = f"{abs(value.numerator) * 10**places // value.denominator}"
    if places:
        text = text.rjust(places + 1, "0")
        text = f"{text[:-places]}.{text[-places:]}"
    return f"-{text}" if value < 0 else text


def _decimal_places(value: Fraction) -> int | None:
    """How many decimal places write `value` exactly; None if it never terminates."""
    for places in range(12):
        if (value * 10**places).denominator == 1:
            return places
    return None


def round_half_up(value: Fraction, places: int) -> Fraction:
    """Rounding as taught at school (2.345 → 2.35), not banker's rounding."""
    scale = 10**places
    magnitude = math.floor(abs(value) * scale + Fraction(1, 2))
    return Fraction(magnitude if value >= 0 else -magnitude, scale)


def _fixed(value: Fraction, places: int) -> str:
    """`value` rounded and written with exactly `places` decimals ("14.30")."""
    rounded = round_half_up(value, places)
    text = decimal_text(rounded) or ""
    if places == 0:
        return text
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(places, '0')}"


def _truncated(value: Fraction, places: int) -> str:
    """The first `places` decimals followed by an ellipsis ("14.2857…")."""
    scale = 10**places
    cut = Fraction(math.floor(abs(value) * scale), scale)
    return _fixed(cut if value >= 0 else -cut, places) + "…"


def _number(value: Fraction) -> str:
    """A value as an explanation writes it: integer, exact decimal or fraction."""
    return decimal_text(value) or fraction_text(value)


def _answer_text(problem: Problem, value: Fraction) -> str:
    if problem.places is not None:
        return _fixed(value, problem.places)
    if problem.as_fraction:
        return fraction_text(value)
    return _number(value)


def _record(category: str, problem: Problem, *, multiple_choice: bool) -> QuestionRecord:
    answer = _answer_text(problem, problem.value)
    if multiple_choice:
        choices = _choices(problem, answer)
        answer += problem.suffix
        accepted: tuple[str, ...] = ()
        tolerance = None
    else:
        choices = ()
        accepted = _accepted(problem, answer)
        # A rounded answer is right within half a unit of its last place, so both
        # the rounded and the unrounded value are accepted.
        tolerance = None if problem.places is None else 0.5 * 10.0**-problem.places
    return QuestionRecord(
        topic=TOPIC,
        category=category,
        difficulty=problem.difficulty,
        kind=QuestionKind.MULTIPLE_CHOICE if multiple_choice else QuestionKind.FREE_TEXT,
        prompt=problem.prompt,
        choices=choices,
        answer=answer,
        accepted=accepted,
        tolerance=tolerance,
        explanation=problem.explanation,
        source=SOURCE,
    )


def _accepted(problem: Problem, answer: str) -> tuple[str, ...]:
    forms = []
    if problem.suffix:
        forms.append(answer + problem.suffix)
    value = problem.value
    if problem.as_fraction and problem.accept_decimal:
        exact = decimal_text(value)
        if exact is not None and exact != answer:
            forms.append(exact)
        if abs(value) > 1 and value.denominator != 1:
            whole, rest = divmod(abs(value.numerator), value.denominator)
            sign = "-" if value < 0 else ""
            forms.append(f"{sign}{whole} {rest}/{value.denominator}")
    return tuple(forms)


def _choices(problem: Problem, answer: str) -> tuple[str, ...]:
    """The answer and three wrong choices, in increasing order (which hides the answer)."""
    correct = problem.value
    if problem.places is not None:
        correct = round_half_up(correct, problem.places)
    candidates = [*problem.wrong, *_nearby(correct)]
    picked: dict[str, Fraction] = {answer: correct}
    for value in candidates:
        text = _answer_text(problem, value)
        if value == correct or text in picked or len(picked) == 4:
            continue
        places = _decimal_places(value)
        # Next to a whole-number answer, "-9.625" is no temptation, only a giveaway.
        if correct.denominator == 1 and (places is None or places > 1):
            continue
        picked[text] = value
    ordered = sorted(picked, key=lambda t: picked[t])
    return tuple(text + problem.suffix for text in ordered)


def _nearby(value: Fraction) -> list[Fraction]:
    """Fallback wrong choices close to the answer."""
    step = Fraction(1, value.denominator) if value.denominator != 1 else Fraction(1)
    return [value + step, value - step, value + 2 * step, value * 2, value + 10]


# --------------------------------------------------------------------------- arithmetic


def add_whole(rng: random.Random) -> Problem:
    """Three-digit addition."""
    a = rng.randint(120, 899)
    hundreds, rest = 100 * rng.randint(1, 8), rng.randint(11, 99)
    b = hundreds + rest
    first, total = a + hundreds, a + b
    return Problem(
        f"What is {a} + {b}?",
        Fraction(total),
        f"{a} + {b}: add the hundreds first, {a} + {hundreds} = {first}, "
        f"then the rest, {first} + {rest} = {total}.",
        EASY,
        (Fraction(total - 10), Fraction(total + 10), Fraction(total + 100)),
    )


def subtract_whole(rng: random.Random) -> Problem:
    """Three-digit subtraction."""
    a = rng.randint(400, 999)
    hundreds, rest = 100 * rng.randint(1, a // 100 - 2), rng.randint(11, 99)
    b = hundreds + rest
    first, difference = a - hundreds, a - b
    return Problem(
        f"What is {a} − {b}?",
        Fraction(difference),
        f"{a} − {b}: take away the hundreds first, {a} − {hundreds} = {first}, "
        f"then the rest, {first} − {rest} = {difference}.",
        EASY,
        (Fraction(difference + 10), Fraction(difference - 10), Fraction(difference + 100)),
    )


def times_table(rng: random.Random) -> Problem:
    """A times-table fact up to 12 × 12."""
    a, b = rng.randint(6, 12), rng.randint(6, 12)
    product = a * b
    return Problem(
        f"What is {a} × {b}?",
        Fraction(product),
        f"{a} × {b} = {a} × {b - 1} + {a} = {a * (b - 1)} + {a} = {product}.",
        EASY,
        (Fraction(product - a), Fraction(product + a), Fraction(product + b)),
    )


def long_multiplication(rng: random.Random) -> Problem:
    """Two-digit by two-digit multiplication."""
    a, tens, ones = rng.randint(13, 99), 10 * rng.randint(1, 9), rng.randint(1, 9)
    b = tens + ones
    part_tens, part_ones, product = a * tens, a * ones, a * b
    return Problem(
        f"What is {a} × {b}?",
        Fraction(product),
        f"{a} × {b} = {a} × {tens} + {a} × {ones} = {part_tens} + {part_ones} = {product}.",
        MEDIUM,
        # Forgetting that the tens digit is worth ten times as much:
        (Fraction(part_tens // 10 + part_ones), Fraction(product + a), Fraction(product - a)),
    )


def order_of_operations(rng: random.Random) -> Problem:
    """Multiplication before addition."""
    a, b, c = rng.randint(2, 30), rng.randint(2, 12), rng.randint(2, 12)
    value = a + b * c
    return Problem(
        f"What is {a} + {b} × {c}?",
        Fraction(value),
        f"Multiplication comes before addition: {b} × {c} = {b * c}, then {a} + {b * c} = {value}.",
        MEDIUM,
        ((Fraction(a + b) * c), Fraction(a + b + c), Fraction(a * b + c)),
    )


def negative_result(rng: random.Random) -> Problem:
    """Subtracting a larger number."""
    a = rng.randint(11, 60)
    b = a + rng.randint(5, 60)
    value = a - b
    return Problem(
        f"What is {a} − {b}?",
        Fraction(value),
        f"{b} − {a} = {b - a}, and taking away more than you have gives a negative "
        f"result: {a} − {b} = {value}.",
        MEDIUM,
        (Fraction(b - a), Fraction(value - 10), Fraction(value + 10)),
    )


def brackets_and_powers(rng: random.Random) -> Problem:
    """Brackets, then powers, then multiplication, then addition."""
    b = rng.randint(2, 9)
    a = b + rng.randint(2, 9)
    c, d = rng.randint(2, 9), rng.randint(2, 12)
    inner = a - b
    square, product = inner * inner, c * d
    value = square + product
    return Problem(
        f"What is ({a} − {b})² + {c} × {d}?",
        Fraction(value),
        f"Brackets first: {a} − {b} = {inner}; then the power: {inner}² = {square}; "
        f"then multiplication: {c} × {d} = {product}; finally {square} + {product} = {value}.",
        HARD,
        # Doubling instead of squaring, and adding before multiplying:
        (Fraction(2 * inner + product), Fraction((square + c) * d), Fraction(square + c + d)),
    )


def long_division(rng: random.Random) -> Problem:
    """Exact division by a two-digit number."""
    divisor, tens, ones = rng.randint(12, 29), 10 * rng.randint(2, 9), rng.randint(1, 9)
    quotient = tens + ones
    dividend = divisor * quotient
    rest = dividend - divisor * tens
    return Problem(
        f"What is {dividend} ÷ {divisor}?",
        Fraction(quotient),
        f"{dividend} ÷ {divisor}: {divisor} × {tens} = {divisor * tens}, "
        f"{dividend} − {divisor * tens} = {rest} = {divisor} × {ones}, "
        f"so the answer is {tens} + {ones} = {quotient}.",
        HARD,
        (Fraction(quotient + 1), Fraction(quotient - 1), Fraction(quotient + 10)),
    )


def rounded_division(rng: random.Random) -> Problem:
    """Division to two decimal places."""
    b = rng.choice((3, 6, 7, 9, 11, 12, 13))
    a = rng.randint(10, 200)
    while a % b == 0:
        a += 1
    value = Fraction(a, b)
    rounded = _fixed(value, 2)
    third = math.floor(value * 1000) % 10
    direction = "up" if third >= 5 else "down"
    return Problem(
        f"What is {a} ÷ {b}, rounded to 2 decimal places?",
        value,
        f"{a} ÷ {b} = {_truncated(value, 4)}; the third decimal place is {third}, "
        f"so round {direction} to {rounded}.",
        MEDIUM,
        # Cutting off instead of rounding, and rounding to one place:
        (Fraction(math.floor(value * 100), 100), round_half_up(value, 1) + Fraction(1, 100)),
        places=2,
    )


# --------------------------------------------------------------------------- fractions


def _proper(rng: random.Random, low: int = 2, high: int = 12) -> Fraction:
    denominator = rng.randint(low, high)
    return Fraction(rng.randint(1, denominator - 1), denominator)


def simplify_fraction(rng: random.Random) -> Problem:
    """Reduce a fraction to lowest terms."""
    base = _proper(rng, 3, 12)
    factor = rng.randint(2, 9)
    top, bottom = base.numerator * factor, base.denominator * factor
    return Problem(
        f"Simplify {top}/{bottom} to lowest terms.",
        base,
        f"The greatest common divisor of {top} and {bottom} is {factor}: "
        f"{top} ÷ {factor} = {base.numerator} and {bottom} ÷ {factor} = {base.denominator}, "
        f"so {top}/{bottom} = {fraction_text(base)}.",
        EASY,
        (
            Fraction(base.numerator, base.denominator + 1),
            Fraction(base.numerator + 1, base.denominator),
            Fraction(base.denominator, base.numerator),
        ),
        as_fraction=True,
        accept_decimal=False,
    )


def _common_denominator(x: Fraction, y: Fraction) -> tuple[int, int, int]:
    lcm = x.denominator * y.denominator // math.gcd(x.denominator, y.denominator)
    return lcm, x.numerator * lcm // x.denominator, y.numerator * lcm // y.denominator


def _two_fractions(rng: random.Random) -> tuple[Fraction, Fraction]:
    x = _proper(rng)
    y = _proper(rng)
    while y.denominator == x.denominator:
        y = _proper(rng)
    return x, y


def _lowest(top: int, lcm: int) -> str:
    value = Fraction(top, lcm)
    if value.denominator == lcm:
        return f"{top}/{lcm}."
    return f"{top}/{lcm} = {fraction_text(value)}."


def add_fractions(rng: random.Random) -> Problem:
    """Add fractions with different denominators."""
    x, y = _two_fractions(rng)
    while (x + y).denominator == 1:
        x, y = _two_fractions(rng)
    lcm, top_x, top_y = _common_denominator(x, y)
    return Problem(
        f"What is {x} + {y}? Give the answer in lowest terms.",
        x + y,
        f"{x} + {y}: common denominator {lcm} → {top_x}/{lcm} + {top_y}/{lcm} = "
        + _lowest(top_x + top_y, lcm),
        EASY if lcm <= 12 else MEDIUM,
        # Adding tops and bottoms separately is the classic mistake.
        (
            Fraction(x.numerator + y.numerator, x.denominator + y.denominator),
            Fraction(x.numerator + y.numerator, lcm),
            x * y,
        ),
        as_fraction=True,
    )


def subtract_fractions(rng: random.Random) -> Problem:
    """Subtract fractions with different denominators."""
    x, y = _two_fractions(rng)
    while x - y <= 0 or (x - y).denominator == 1:
        x, y = _two_fractions(rng)
    lcm, top_x, top_y = _common_denominator(x, y)
    return Problem(
        f"What is {x} − {y}? Give the answer in lowest terms.",
        x - y,
        f"{x} − {y}: common denominator {lcm} → {top_x}/{lcm} − {top_y}/{lcm} = "
        + _lowest(top_x - top_y, lcm),
        MEDIUM,
        (
            Fraction(abs(x.numerator - y.numerator) or 1, lcm),
            x + y,
            Fraction(top_x - top_y + 1, lcm),
        ),
        as_fraction=True,
    )


def multiply_fractions(rng: random.Random) -> Problem:
    """Multiply two fractions."""
    x, y = _two_fractions(rng)
    top, bottom = x.numerator * y.numerator, x.denominator * y.denominator
    return Problem(
        f"What is {x} × {y}? Give the answer in lowest terms.",
        x * y,
        f"Multiply the numerators and the denominators: {x.numerator} × {y.numerator} = {top}, "
        f"{x.denominator} × {y.denominator} = {bottom}, so the product is " + _lowest(top, bottom),
        MEDIUM,
        (x / y, x + y, Fraction(x.numerator + y.numerator, x.denominator + y.denominator)),
        as_fraction=True,
    )


def divide_fractions(rng: random.Random) -> Problem:
    """Divide by a fraction: multiply by its reciprocal."""
    x, y = _two_fractions(rng)
    reciprocal = 1 / y
    top, bottom = x.numerator * y.denominator, x.denominator * y.numerator
    return Problem(
        f"What is {x} ÷ {y}? Give the answer in lowest terms.",
        x / y,
        f"Dividing by {y} means multiplying by its reciprocal {fraction_text(reciprocal)}: "
        f"{x} × {fraction_text(reciprocal)} = " + _lowest(top, bottom),
        HARD,
        (x * y, y / x, Fraction(x.numerator * y.numerator, x.denominator * y.denominator) + 1),
        as_fraction=True,
    )


def fraction_of_amount(rng: random.Random) -> Problem:
    """A fraction of a whole number."""
    part = _proper(rng, 3, 10)
    amount = part.denominator * rng.randint(3, 20)
    share = amount // part.denominator
    value = part * amount
    return Problem(
        f"What is {part} of {amount}?",
        value,
        f"{amount} ÷ {part.denominator} = {share}, then {share} × {part.numerator} = {value}.",
        EASY,
        (Fraction(share), Fraction(amount - value), Fraction(amount * part.denominator, 10)),
    )


def decimal_to_fraction(rng: random.Random) -> Problem:
    """Write a terminating decimal as a fraction."""
    denominator = rng.choice((4, 5, 8, 20, 25, 40, 50))
    value = Fraction(rng.randint(1, denominator - 1), denominator)
    while value.denominator < 4:
        value = Fraction(rng.randint(1, denominator - 1), denominator)
    decimal = decimal_text(value) or ""
    places = len(decimal.partition(".")[2])
    top, bottom = int(decimal.replace(".", "")), 10**places
    divisor = math.gcd(top, bottom)
    return Problem(
        f"Write {decimal} as a fraction in lowest terms.",
        value,
        f"{decimal} = {top}/{bottom}; dividing the top and the bottom by {divisor} "
        f"gives {fraction_text(value)}.",
        MEDIUM,
        (Fraction(top, 100 if bottom != 100 else 10), Fraction(1, value.denominator), 1 - value),
        as_fraction=True,
        accept_decimal=False,
    )


def fraction_to_decimal(rng: random.Random) -> Problem:
    """Write a fraction as a decimal."""
    denominator = rng.choice((4, 5, 8, 16, 20, 25))
    value = Fraction(rng.randint(1, denominator - 1), denominator)
    while value.denominator == 2:
        value = Fraction(rng.randint(1, denominator - 1), denominator)
    scale = 10 ** (_decimal_places(value) or 0)
    return Problem(
        f"Write {value} as a decimal.",
        value,
        f"{value} = {value.numerator * scale // value.denominator}/{scale} = {_number(value)}.",
        EASY,
        (
            Fraction(value.numerator, 10),
            Fraction(value.denominator, 100),
            value + Fraction(1, 10),
        ),
    )


def mixed_to_improper(rng: random.Random) -> Problem:
    """Turn a mixed number into an improper fraction."""
    whole, part = rng.randint(1, 9), _proper(rng, 3, 12)
    value = whole + part
    top = whole * part.denominator + part.numerator
    return Problem(
        f"Write {whole} {part} as an improper fraction.",
        value,
        f"{whole} × {part.denominator} + {part.numerator} = {top}, "
        f"so {whole} {part} = {fraction_text(value)}.",
        MEDIUM,
        (
            Fraction(whole * part.numerator, part.denominator) + 1,
            Fraction(whole + part.numerator, part.denominator),
            value + 1,
        ),
        as_fraction=True,
        accept_decimal=False,
    )


# --------------------------------------------------------------------------- percentages


def percent_of(rng: random.Random) -> Problem:
    """A percentage of an amount."""
    percent = rng.choice((5, 10, 15, 20, 25, 30, 40, 60, 75, 80))
    amount = 20 * rng.randint(2, 30)
    value = Fraction(percent, 100) * amount
    return Problem(
        f"What is {percent}% of {amount}?",
        value,
        f"{percent}% of {amount} = {percent}/100 × {amount} = {_number(value)}.",
        EASY,
        (amount - value, value * 10, value / 10),
    )


def what_percentage(rng: random.Random) -> Problem:
    """One amount as a percentage of another."""
    percent = rng.choice((5, 10, 20, 25, 40, 50, 60, 75, 80))
    whole = 20 * rng.randint(2, 25)
    part = Fraction(percent * whole, 100)
    return Problem(
        f"What percentage of {whole} is {_number(part)}?",
        Fraction(percent),
        f"{_number(part)} ÷ {whole} = {_number(part / whole)}, and × 100 gives {percent}%.",
        MEDIUM,
        (Fraction(100 - percent), Fraction(percent + 5), part),
        suffix="%",
    )


def percent_decrease(rng: random.Random) -> Problem:
    """A price after a percentage discount."""
    percent = rng.choice((10, 15, 20, 25, 30, 35, 40))
    price = 20 * rng.randint(2, 25)
    discount = Fraction(percent, 100) * price
    value = price - discount
    return Problem(
        f"A price of {price} is reduced by {percent}%. What is the new price?",
        value,
        f"{percent}% of {price} is {_number(discount)}, so the new price is "
        f"{price} − {_number(discount)} = {_number(value)}.",
        MEDIUM,
        (discount, price + discount, Fraction(price - percent)),
    )


def percent_increase(rng: random.Random) -> Problem:
    """An amount after a percentage increase."""
    percent = rng.choice((5, 10, 15, 20, 30, 50))
    amount = 20 * rng.randint(2, 30)
    increase = Fraction(percent, 100) * amount
    value = amount + increase
    return Problem(
        f"{amount} is increased by {percent}%. What is the result?",
        value,
        f"{percent}% of {amount} is {_number(increase)}, so the result is "
        f"{amount} + {_number(increase)} = {_number(value)}.",
        MEDIUM,
        (Fraction(amount + percent), increase, amount - increase),
    )


def percent_change(rng: random.Random) -> Problem:
    """Percentage change from an old value to a new one."""
    percent = rng.choice((10, 20, 25, 40, 50, 60, 75))
    old = 20 * rng.randint(2, 25)
    rises = rng.random() < 0.5
    change = Fraction(percent * old, 100)
    new = old + change if rises else old - change
    word, verb = ("increase", "rises") if rises else ("decrease", "falls")
    return Problem(
        f"A value {verb} from {old} to {_number(new)}. What is the percentage {word}?",
        Fraction(percent),
        f"The change is {_number(abs(new - old))}; divided by the original value: "
        f"{_number(change)} ÷ {old} = {_number(change / old)} = {percent}%.",
        HARD,
        # Dividing by the new value instead of the original:
        (round_half_up(change / new * 100, 1), change, Fraction(percent + 10)),
        suffix="%",
    )


def reverse_percentage(rng: random.Random) -> Problem:
    """The original price before a percentage increase."""
    percent = rng.choice((10, 20, 25, 50))
    original = 20 * rng.randint(2, 30)
    multiplier = 1 + Fraction(percent, 100)
    final = original * multiplier
    return Problem(
        f"After a {percent}% increase, a price is {_number(final)}. What was the original price?",
        Fraction(original),
        f"The new price is {100 + percent}% of the original, so the original is "
        f"{_number(final)} ÷ {_number(multiplier)} = {original}.",
        HARD,
        # Taking the percentage off the new price is the classic mistake.
        (final * (1 - Fraction(percent, 100)), final - percent, final * Fraction(percent, 100)),
    )


def rounded_percentage(rng: random.Random) -> Problem:
    """A percentage that needs rounding."""
    whole = rng.choice((3, 6, 7, 9, 11, 12, 13, 14, 15, 18, 21, 24, 27, 30, 35, 45, 60))
    part = rng.randint(1, whole - 1)
    while (Fraction(part * 100, whole)).denominator == 1:
        part = rng.randint(1, whole - 1)
    value = Fraction(part * 100, whole)
    return Problem(
        f"What is {part} as a percentage of {whole}, to 1 decimal place?",
        value,
        f"{part} ÷ {whole} = {_truncated(Fraction(part, whole), 5)}; × 100 = "
        f"{_truncated(value, 3)}%, which rounds to {_fixed(value, 1)}%.",
        HARD,
        (Fraction(math.floor(value * 10), 10) - Fraction(1, 10), Fraction(part * 10, whole)),
        places=1,
        suffix="%",
    )


def compound_growth(rng: random.Random) -> Problem:
    """Two years of compound growth."""
    percent = rng.choice((5, 10, 20, 50))
    start = 100 * rng.randint(1, 30)
    rate = 1 + Fraction(percent, 100)
    year_one = start * rate
    value = year_one * rate
    return Problem(
        f"An amount of {start} grows by {percent}% each year, compounded. "
        "How much is it after 2 years?",
        value,
        f"Each year multiplies the amount by {_number(rate)}: {start} × {_number(rate)} = "
        f"{_number(year_one)}, then {_number(year_one)} × {_number(rate)} = {_number(value)}.",
        HARD,
        # Simple growth (the same increase twice) instead of compound:
        (start * (1 + 2 * Fraction(percent, 100)), year_one, value + start),
    )


# --------------------------------------------------------------------------- equations


def _signed(term: str, number: int) -> str:
    """ "3x + 5" or "3x − 5": a term followed by a signed constant."""
    return f"{term} + {number}" if number >= 0 else f"{term} − {-number}"


def one_step_add(rng: random.Random) -> Problem:
    """x + a = b."""
    x, a = rng.randint(2, 60), rng.randint(2, 40)
    b = x + a
    return Problem(
        f"Solve for x: x + {a} = {b}",
        Fraction(x),
        f"Subtract {a} from both sides: x = {b} − {a} = {x}.",
        EASY,
        (Fraction(b + a), Fraction(x + 1), Fraction(b)),
    )


def one_step_multiply(rng: random.Random) -> Problem:
    """ax = b."""
    x, a = rng.randint(2, 15), rng.randint(2, 12)
    b = a * x
    return Problem(
        f"Solve for x: {a}x = {b}",
        Fraction(x),
        f"Divide both sides by {a}: x = {b} ÷ {a} = {x}.",
        EASY,
        (Fraction(b - a), Fraction(b * a), Fraction(x + 1)),
    )


def two_step(rng: random.Random) -> Problem:
    """ax + b = c with a whole-number solution."""
    x, a, b = rng.randint(2, 15), rng.randint(2, 9), rng.randint(-20, 20) or 7
    c = a * x + b
    undo = f"Subtract {b} from" if b > 0 else f"Add {-b} to"
    return Problem(
        f"Solve for x: {_signed(f'{a}x', b)} = {c}",
        Fraction(x),
        f"{undo} both sides: {a}x = {c - b}; divide both sides by {a}: x = {x}.",
        MEDIUM,
        (Fraction(c + b, a), Fraction(c - b), Fraction(c, a) - b),
    )


def negative_solution(rng: random.Random) -> Problem:
    """ax + b = c whose solution is negative."""
    x, a, b = -rng.randint(1, 12), rng.randint(2, 9), rng.randint(10, 60)
    c = a * x + b
    return Problem(
        f"Solve for x: {a}x + {b} = {c}",
        Fraction(x),
        f"Subtract {b} from both sides: {a}x = {c - b}; divide both sides by {a}: x = {x}.",
        MEDIUM,
        (Fraction(-x), Fraction(c + b, a), Fraction(x - 1)),
    )


def divided_unknown(rng: random.Random) -> Problem:
    """x/a + b = c."""
    a, quotient, b = rng.randint(2, 9), rng.randint(2, 12), rng.randint(1, 20)
    x, c = a * quotient, quotient + b
    return Problem(
        f"Solve for x: x/{a} + {b} = {c}",
        Fraction(x),
        f"Subtract {b} from both sides: x/{a} = {quotient}; multiply both sides by {a}: x = {x}.",
        MEDIUM,
        (Fraction(quotient), Fraction(c * a), Fraction(x + b)),
    )


def _term(coefficient: int) -> str:
    """ "x" or "3x"."""
    return "x" if coefficient == 1 else f"{coefficient}x"


def both_sides(rng: random.Random) -> Problem:
    """ax + b = cx + d with the unknown on both sides."""
    x = rng.randint(-6, 12) or 3
    c = rng.randint(1, 6)
    a = c + rng.randint(2, 6)
    b = rng.randint(1, 25)
    d = a * x + b - c * x
    while d == 0:
        b += 1
        d += 1
    return Problem(
        f"Solve for x: {a}x + {b} = {_signed(_term(c), d)}",
        Fraction(x),
        f"Subtract {_term(c)} from both sides: {a - c}x + {b} = {d}; subtract {b}: "
        f"{a - c}x = {d - b}; divide by {a - c}: x = {x}.",
        MEDIUM,
        (Fraction(d - b, a + c), Fraction(d + b, a - c), Fraction(-x)),
    )


def expand_brackets(rng: random.Random) -> Problem:
    """a(x + b) = cx + d: expand first."""
    x = rng.randint(1, 12)
    a, b = rng.randint(3, 7), rng.randint(1, 9)
    c = rng.randint(1, a - 2)
    d = a * (x + b) - c * x
    right = _signed(_term(c), d)
    return Problem(
        f"Solve for x: {a}(x + {b}) = {right}",
        Fraction(x),
        f"Expand the brackets: {a}x + {a * b} = {right}; subtract {_term(c)} and {a * b} "
        f"from both sides: {a - c}x = {d - a * b}; divide by {a - c}: x = {x}.",
        HARD,
        # Multiplying only the x inside the brackets:
        (Fraction(d - b, a - c), Fraction(-x), Fraction(x + b)),
    )


def fractional_solution(rng: random.Random) -> Problem:
    """ax + b = c whose solution is a fraction."""
    a = rng.randint(2, 9)
    top = rng.randint(1, 40)
    while top % a == 0:
        top = rng.randint(1, 40)
    b = rng.randint(1, 20)
    c = top + b
    value = Fraction(top, a)
    return Problem(
        f"Solve for x: {a}x + {b} = {c}",
        value,
        f"Subtract {b} from both sides: {a}x = {top}; divide both sides by {a}: "
        f"x = {top}/{a}" + ("." if value.denominator == a else f" = {fraction_text(value)}."),
        HARD,
        (Fraction(a, top), Fraction(c + b, a), Fraction(top - a)),
        as_fraction=True,
    )


TEMPLATES: dict[str, tuple[Template, ...]] = {
    "Arithmetic": (
        add_whole,
        subtract_whole,
        times_table,
        long_multiplication,
        order_of_operations,
        negative_result,
        brackets_and_powers,
        long_division,
        rounded_division,
    ),
    "Fractions": (
        simplify_fraction,
        add_fractions,
        subtract_fractions,
        multiply_fractions,
        divide_fractions,
        fraction_of_amount,
        decimal_to_fraction,
        fraction_to_decimal,
        mixed_to_improper,
    ),
    "Percentages": (
        percent_of,
        what_percentage,
        percent_decrease,
        percent_increase,
        percent_change,
        reverse_percentage,
        rounded_percentage,
        compound_growth,
    ),
    "Equations": (
        one_step_add,
        one_step_multiply,
        two_step,
        negative_solution,
        divided_unknown,
        both_sides,
        expand_brackets,
        fractional_solution,
    ),
}
