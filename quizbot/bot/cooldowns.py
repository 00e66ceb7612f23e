"""The start cooldown: one quiz start per member every few seconds, counting only the
starts that happened.

discord.py's `app_commands.checks.cooldown` counts every invocation, so a start refused
for a typo in the topic would lock the member out for the whole period. This one is
checked before the start and charged after it succeeded; /quiz start and /review share it.
While a start runs, the member's slot is held, so two starts at the same instant (in two
channels) do not both pass before either is charged.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from discord import app_commands

# One start per member every few seconds: stops accidental double starts and spam.
START_COOLDOWN_SECONDS = 10.0
# Forget members whose cooldown is long over once this many are remembered.
_PRUNE_AT = 1000


class StartCooldown:
    """Per-member cooldown between quiz starts."""

    def __init__(
        self, seconds: float = START_COOLDOWN_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._last: dict[int, float] = {}
        self._in_flight: set[int] = set()

    def check(self, user_id: int) -> None:
        """Raise if the member started a quiz too recently.

        Raises:
            app_commands.CommandOnCooldown: with the seconds left (the bot's error handler
                tells the member how long to wait).
        """
        if user_id in self._in_flight:
            # Another start of theirs is under way: had it succeeded, they would wait this.
            self._refuse(self.seconds)
        last = self._last.get(user_id)
        if last is None:
            return
        left = last + self.seconds - self._clock()
        if left > 0:
            self._refuse(left)

    def _refuse(self, left: float) -> None:
        raise app_commands.CommandOnCooldown(app_commands.Cooldown(1, self.seconds), left)

    @contextlib.contextmanager
    def starting(self, user_id: int) -> Iterator[None]:
        """Check, hold the member's slot while the start runs, and charge it if it succeeded.

        Raises:
            app_commands.CommandOnCooldown: as `check`, also while another start of the
                member's is under way.
        """
        self.check(user_id)
        self._in_flight.add(user_id)
        try:
            yield
        finally:
            self._in_flight.discard(user_id)
        self.started(user_id)  # reached only when the block did not raise

    def started(self, user_id: int) -> None:
        """Charge the member for a start that happened."""
        now = self._clock()
        if len(self._last) >= _PRUNE_AT:
            self._last = {u: t for u, t in self._last.items() if t + self.seconds > now}
        self._last[user_id] = now
