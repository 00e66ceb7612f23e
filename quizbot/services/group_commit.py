"""Group commit: items arriving close together are written by one flush.

Used for answers (`QuizService.answer`) and for the question messages a game
remembers (`QuizService.set_message`): under load, one statement and one connection
serve many callers, each of which gets its own result once the flush has committed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - the conventional name of an item type
R = TypeVar("R")


@dataclass
class BatchStats:
    """What the committer has done (the benchmark and tests read it)."""

    batches: int = 0
    items: int = 0
    largest: int = 0
    failures: int = 0


class GroupCommitter(Generic[I, R]):
    """Collects items for up to `window` seconds (or `max_batch` items) and flushes them.

    Up to `in_flight` flushes run at once (each needs a connection of its own). Items
    with the same `key` (a member) are never in two flushes at once: an item whose key
    is in a flush under way waits for a later batch, so one key's items are written in
    arrival order, one flush after the other. Items arriving during a flush form the next
    batch.
    """

    def __init__(
        self,
        flush: Callable[[Sequence[I]], Awaitable[Sequence[R | BaseException]]],
        *,
        window: float,
        max_batch: int,
        in_flight: int = 1,
        key: Callable[[I], Hashable] | None = None,
        name: str = "answer",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if in_flight < 1:
            raise ValueError("in_flight must be at least 1")
        self._flush = flush
        self.window = max(window, 0.0)
        self.max_batch = max_batch
        self.in_flight = in_flight
        self._key = key
        self.name = name  # what an item is, in task names and errors
        self._queue: list[tuple[I, asyncio.Future[R], float]] = []
        self._full = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._closing = False  # close() was called: flush without waiting for windows
        self._runner: asyncio.Task[None] | None = None
        self._flushing: dict[asyncio.Task[None], set[Hashable]] = {}  # flush -> its keys
        self.stats = BatchStats()
        # Entered around each flush with the batch's items (the benchmark uses it to
        # learn which answers a batch covered and to attribute the batch's statements).
        self.observer: Callable[[Sequence[I]], AbstractContextManager[object]] | None = None

    async def submit(self, item: I) -> R:
        """Queue `item`; returns its result once its batch is committed.

        Raises:
            Exception: whatever the flush raised for this item or its whole batch.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future, time.monotonic()))
        if len(self._queue) >= self.max_batch:
            self._full.set()
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run(), name=f"{self.name}-group-commit")
        return await future

    async def _run(self) -> None:
        try:
            while self._queue:
                deadline = self._queue[0][2] + self.window
                remaining = deadline - time.monotonic()
                if len(self._queue) < self.max_batch and remaining > 0 and not self._closing:
                    self._full.clear()
                    try:
                        async with asyncio.timeout(remaining):
                            await self._full.wait()
                    except TimeoutError:
                        pass
                while len(self._flushing) >= self.in_flight:
                    self._slot_free.clear()
                    await self._slot_free.wait()
                batch = self._take()
                if not batch:  # every queued item's key is being written: wait for one
                    self._slot_free.clear()
                    await self._slot_free.wait()
                    continue
                keys = {self._key(item) for item, _f, _t in batch} if self._key else set()
                task = asyncio.get_running_loop().create_task(self._flush_batch(batch))
                self._flushing[task] = keys
                task.add_done_callback(self._flushed)
                if self.in_flight == 1:
                    await asyncio.wait([task])  # one at a time: the next batch forms meanwhile
        except asyncio.CancelledError:
            # Shutdown: the flushes under way stop with the runner, and their callers get
            # an error (see _flush_batch), as the queued ones do below.
            for flush in self._flushing:
                flush.cancel()
            raise
        finally:
            # Cancelled (shutdown) or a bug: nobody may wait forever.
            for _item, future, _t in self._queue:
                if not future.done():
                    future.set_exception(RuntimeError(f"the {self.name} queue stopped"))
            self._queue.clear()

    def _take(self) -> list[tuple[I, asyncio.Future[R], float]]:
        """The next batch, in arrival order, leaving items whose key is being written."""
        busy: set[Hashable] = set().union(*self._flushing.values())
        if not busy:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            return batch
        assert self._key is not None
        batch, rest = [], []
        for entry in self._queue:
            if len(batch) < self.max_batch and self._key(entry[0]) not in busy:
                batch.append(entry)
            else:
                rest.append(entry)
        self._queue = rest
        return batch

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushing.pop(task, None)
        self._slot_free.set()

    async def _flush_batch(self, batch: list[tuple[I, asyncio.Future[R], float]]) -> None:
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        items = [item for item, _f, _t in batch]
        try:
            if self.observer is None:
                results = await self._flush(items)
            else:
                with self.observer(items):
                    results = await self._flush(items)
            if len(results) != len(batch):
                raise RuntimeError(f"flush returned {len(results)} results for {len(batch)}")
        except BaseException as error:
            self.stats.failures += 1
            failure: BaseException = error
            if not isinstance(error, Exception):
                # The runner was cancelled (loop shutdown) or interrupted, not the
                # callers: a CancelledError would end their tasks as if cancelled.
                failure = RuntimeError(
                    f"the {self.name} queue stopped while writing this {self.name}"
                )
                failure.__cause__ = error
            for _item, future, _t in batch:
                if not future.done():
                    future.set_exception(failure)
            if failure is not error:
                raise
            return
        for (_item, future, _t), result in zip(batch, results, strict=True):
            if future.done():  # the caller gave up (cancelled); its answer still counts
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def close(self) -> None:
        """Flush what is queued and wait for the runner and the flushes to finish."""
        self._closing = True  # also the batches queued during a flush in progress
        self._full.set()
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)
        await asyncio.gather(*self._flushing, return_exceptions=True)
