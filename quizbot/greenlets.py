"""SQLAlchemy's synchronous pool calls, run from async code on greenlets that are reused.

SQLAlchemy's asyncio layer runs its synchronous code (the pool's checkout and return,
the engine's execution) in a greenlet, where `await_()` hands each awaitable back to
the event loop: `sqlalchemy.util.greenlet_spawn` makes a new greenlet for every call.
On Python 3.11 every greenlet has its own stack of Python frames, so a new one maps a
fresh 16 KiB chunk of memory for its first frame and unmaps it when it ends: two
system calls and a page fault per call. The pool's checkout and return, two such calls
around every hot unit of work (`quizbot.driver`), cost 118 µs of the process's CPU
around a one-row read against 83 µs on greenlets that are kept and reused
(`strace`: one `mmap` and one `munmap` per call before; a 2.3 GHz Xeon, 2026-12-08).

`run(fn, *args)` is `greenlet_spawn(fn, *args)` on an idle greenlet of this thread
when there is one: `fn` may call SQLAlchemy's `await_()` as under `greenlet_spawn`, it
sees the caller's context variables, and its exceptions (a cancellation thrown in
at an `await_()` included) come out of `run`. A greenlet goes back to its thread's
idle list after each call, up to `IDLE_MAX` of them.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple

from greenlet import GreenletExit, getcurrent, greenlet

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Idle greenlets kept per thread. Calls in flight at once each hold one (a checkout
# waiting for a connection is in flight): beyond this many, the extra ones end.
IDLE_MAX = 64


class _Finished:
    """What a worker hands back when its call ended: a value or an exception."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> _Finished:
    try:
        return _Finished(fn(*args), None)
    except GreenletExit:
        raise  # the worker is being ended (collected while suspended): let it end
    except BaseException as error:
        return _Finished(None, error)


class _Worker(greenlet):  # type: ignore[misc]
    """A greenlet that runs one call after another, suspended in between."""

    # What SQLAlchemy's `await_()` checks before handing an awaitable to the parent.
    __sqlalchemy_greenlet_provider__ = True

    def __init__(self) -> None:
        super().__init__(self._serve)

    def _serve(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        while True:
            # Nothing of the last call is kept while idle: the next switch brings a new one.
            fn, args = self.parent.switch(_call(fn, args))


class _Idle(threading.local):
    def __init__(self) -> None:
        # A greenlet can only be switched to in its own thread.
        self.workers: list[_Worker] = []


_idle = _Idle()


def idle_workers() -> int:
    """How many idle greenlets this thread keeps (the tests' view)."""
    return len(_idle.workers)


async def run(fn: Callable[[*Ts], T], *args: *Ts) -> T:
    """Call `fn(*args)` in a greenlet, awaiting what it hands to `await_()`; its result.

    Raises:
        What `fn` raised, or what interrupted an awaitable it handed over (thrown into
        `fn` at its `await_()`, which may handle it).
    """
    workers = _idle.workers
    worker = workers.pop() if workers else _Worker()
    current = getcurrent()
    worker.parent = current
    worker.gr_context = current.gr_context  # the caller's context variables
    step = worker.switch(fn, args)
    while not isinstance(step, _Finished):
        if worker.dead:  # only if something threw GreenletExit in at an await_()
            raise RuntimeError("the greenlet running a pool call ended")
        awaitable: Awaitable[Any] = step
        try:
            value = await awaitable
        except BaseException:
            step = worker.throw(*sys.exc_info())
        else:
            step = worker.switch(value)
    worker.gr_context = None  # an idle greenlet holds no caller's context
    if len(workers) < IDLE_MAX:
        workers.append(worker)
    if step.error is not None:
        raise step.error
    result: T = step.value
    return result
