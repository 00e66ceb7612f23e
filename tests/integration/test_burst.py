"""The answer burst (`bench.burst`): the server's CPU is read around each burst after
the first, and divided by those bursts' answers, whatever the server did between them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.burst import _server_us_per_answer, measure
from bench.config import SCALES
from bench.dataset import seed
from quizbot.db_admin import asyncpg_args
from tests.database import drop_database, migrated_database


class _CountingMeter:
    """A server whose CPU seconds are the number of readings so far: between the two
    readings around one burst it burns exactly one second, and between bursts (the
    reveal and move) one more."""

    def __init__(self) -> None:
        self.readings = 0

    def seconds(self) -> float | None:
        self.readings += 1
        return float(self.readings)


class _FailingMeter(_CountingMeter):
    """The same, but reading number `fails` gives nothing (psutil lost the postmaster,
    say)."""

    def __init__(self, fails: int) -> None:
        super().__init__()
        self.fails = fails

    def seconds(self) -> float | None:
        reading = super().seconds()
        return None if self.readings == self.fails else reading


@pytest.fixture(scope="module")
async def seeded() -> AsyncIterator[str]:
    """A migrated database of the smoke dataset (the quiz draws its questions there)."""
    url = await migrated_database()
    try:
        await seed(asyncpg_args(url), SCALES["smoke"])
        yield url
    finally:
        await drop_database(url)


async def test_the_servers_cpu_covers_each_burst_after_the_first_and_nothing_between(
    seeded: str,
) -> None:
    meter = _CountingMeter()
    result = await measure(seeded, players=4, questions=3, meter=meter)
    assert result["bursts"] == 2
    # Two readings a burst, three bursts.
    assert meter.readings == 6
    # One second in each of the two bursts after the first, over their 2 × 4 answers:
    # a span from the second burst's start to the last one's end would hold the
    # second between them too (3 s), one that began at the first burst 5 s.
    assert result["server_cpu_us_per_answer"] == pytest.approx(2 / 8 * 1e6)


async def test_a_failed_reading_is_not_measured_rather_than_a_guess(seeded: str) -> None:
    # The first burst's second reading fails: the figure does not use that burst.
    result = await measure(seeded, players=4, questions=3, meter=_FailingMeter(2))
    assert result["server_cpu_us_per_answer"] == pytest.approx(2 / 8 * 1e6)
    # The second burst's first reading fails: no figure, not one burst's alone.
    result = await measure(seeded, players=4, questions=3, meter=_FailingMeter(3))
    assert result["server_cpu_us_per_answer"] is None


def test_a_total_that_went_backwards_is_no_cost() -> None:
    assert _server_us_per_answer([0.02, 0.03], players=100) == pytest.approx(250.0)
    assert _server_us_per_answer([0.02, -0.03], players=100) is None
    assert _server_us_per_answer([], players=100) is None
