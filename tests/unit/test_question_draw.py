"""How many candidate questions a start sends, and what that costs in unseen-first."""

from __future__ import annotations

import math
import random

import pytest

from quizbot.services.question_draw import (
    RECENT_WINDOW,
    TAIL_EXPONENT,
    draw_candidates,
    draw_size,
)
from quizbot.services.quiz import MAX_QUESTIONS, MIN_QUESTIONS


def _shortfall(pool: int, seen: int, sent: int, count: int) -> float:
    """The exact chance that a uniform sample of `sent` of a pool of `pool`, of which
    `seen` were seen, holds fewer than `count` unseen questions (hypergeometric)."""
    unseen = pool - seen
    ways = sum(math.comb(unseen, k) * math.comb(seen, sent - k) for k in range(count))
    return ways / math.comb(pool, sent)


@pytest.mark.parametrize("count", [MIN_QUESTIONS, 5, 10, 25, MAX_QUESTIONS])
@pytest.mark.parametrize("pool", [1, 40, 300, 301, 400, 600, 1_000, 2_000, 10_000, 100_000])
def test_a_start_shows_a_seen_question_too_early_almost_never(pool: int, count: int) -> None:
    sent = draw_size(pool, count)
    assert sent <= min(pool, count + RECENT_WINDOW)
    # The worst case: the member's whole window of recent answers is in this pool.
    seen = min(pool, RECENT_WINDOW)
    if pool - seen < count:
        return  # fewer unseen than asked for: every start shows seen ones, as it should
    assert _shortfall(pool, seen, sent, count) <= math.exp(-TAIL_EXPONENT)


def test_a_big_pool_sends_a_few_dozen_candidates_and_a_small_one_goes_whole() -> None:
    assert draw_size(2_000, 5) < 70 and draw_size(100_000, 5) < 60
    assert draw_size(100_000, MAX_QUESTIONS) < 130
    # Not much bigger than the window: count + window candidates, which is exact.
    assert draw_size(320, 5) == 5 + RECENT_WINDOW
    assert draw_size(20, 5) == 20


def test_candidates_are_distinct_questions_of_the_pool_in_random_order() -> None:
    rng = random.Random(1)
    big = list(range(10_000))
    draw = draw_candidates(rng, big, 5)
    assert len(draw.candidates) == draw_size(10_000, 5) == len(set(draw.candidates))
    assert set(draw.candidates) <= set(big)
    assert (draw.count, draw.window) == (5, RECENT_WINDOW)
    small = list(range(20))
    assert sorted(draw_candidates(rng, small, 5).candidates) == small  # a small pool goes whole
    # ... in random order: the statement keeps it for the unseen ones.
    assert len({tuple(draw_candidates(rng, small, 5).candidates) for _ in range(5)}) > 1
