"""Snowflake ids shaped like Discord's, so ``discord.utils.snowflake_time`` gives real times."""

from __future__ import annotations

import itertools
import time

DISCORD_EPOCH_MS = 1_420_070_400_000


class SnowflakeFactory:
    """Hands out increasing snowflakes: timestamp in the high bits, a counter in the low ones.

    discord.py derives ``created_at`` from ids, and sorts some caches by id, so the ids must
    both encode the current time and strictly increase within one stand-in.
    """

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._last = 0

    def next(self) -> int:
        millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
        candidate = (millis << 22) | (next(self._counter) & 0xFFF)
        # Two ids in the same millisecond after a counter wrap would collide: never go back.
        self._last = max(candidate, self._last + 1)
        return self._last
