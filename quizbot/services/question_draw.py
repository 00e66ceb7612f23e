"""Which candidate questions a quiz's start sends to its statement.

The start's statement (`SessionRepository.start` with a `QuestionDraw`) takes the
member's unseen candidates first, in the candidates' random order, then those seen
longest ago. It knows only the member's last RECENT_WINDOW answers in the guild, so
at most that many of the pool count as seen.

`count + RECENT_WINDOW` candidates always hold `count` unseen ones whenever the pool
does. A pool much larger than the window needs far fewer: every candidate sent costs
a step of `random.sample`, an array element for asyncpg to encode and a row for the
server to join; in a profile of a burst of starts, sampling the 305 candidates of a
five-question quiz alone was a fifth of a start's CPU in the bot.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from quizbot.repositories import QuestionDraw

# How many recent answers count as "seen recently" when choosing questions.
RECENT_WINDOW = 300

# Candidates are sized so that a start shows a seen question while its pool still
# holds `count` unseen ones with probability at most e**-TAIL_EXPONENT (about 2e-9).
TAIL_EXPONENT = 20.0


def draw_size(pool_size: int, count: int, window: int = RECENT_WINDOW) -> int:
    """How many random candidates of a pool of `pool_size` a start sends for `count`
    questions.

    At most `window` of the pool are seen, so each candidate of a uniform sample is
    unseen with probability at least p = 1 - window / pool_size, and the unseen ones
    among m candidates are at worst Binomial(m, p), of mean mu = m * p. By Chernoff's
    bound, fewer than `count` of them has probability at most exp(-d**2 / (2 * mu))
    with d = mu - count; d = T + sqrt(T**2 + 2 * T * count), with T the tail
    exponent, makes that exp(-T). Where the m this needs is not smaller than
    `count + window`, that many are sent, which is exact.
    """
    exact = min(pool_size, count + window)
    unseen_share = 1 - window / pool_size if pool_size else 0.0
    if unseen_share <= 0:
        return exact
    t = TAIL_EXPONENT
    margin = t + math.sqrt(t * t + 2 * t * count)
    return min(exact, math.ceil((count + margin) / unseen_share))


def draw_candidates(rng: random.Random, pool: Sequence[int], count: int) -> QuestionDraw:
    """A random sample of `draw_size` of the pool (the whole pool, shuffled, when it is
    small): in sample order its unseen questions are a random draw of the pool's."""
    candidates = rng.sample(pool, draw_size(len(pool), count))
    return QuestionDraw(candidates=candidates, count=count, window=RECENT_WINDOW)
