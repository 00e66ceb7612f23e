"""Wake waiters whenever the stand-in's state changes, so tests can wait for conditions."""

# The waiting helpers take a ``timeout`` argument on purpose: it is the test-facing API.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ChangeNotifier:
    """Tests await ``wait_until(predicate)``; every state change calls ``notify()``.

    The predicate is re-evaluated after each change, so a condition that became true and
    false again between two checks can be missed; tests should wait for stable states.
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait_until(
        self,
        predicate: Callable[[], T | None],
        timeout: float,
        what: str = "condition",
    ) -> T:
        """Return the predicate's first truthy value; raise ``TimeoutError`` after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), remaining)
            except TimeoutError:
                pass
            finally:
                self._waiters.discard(waiter)
