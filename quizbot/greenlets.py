"""SQLAlchemy's synchronous pool calls, run from async code on greenlets that are reused.

SQLAlchemy's asyncio layer runs its synchronous code (the pool's checkout and return,
the engine's execution) in a greenlet, where `await_()` hands each awaitable back to
the event loop: `sqlalchemy.util.greenlet_spawn` makes a new greenlet for every call.
On Python 3.11 every greenlet has its own stack of Python frames, so a new one maps a
fresh 16 KiB chunk of memory for its first frame and unmaps it when it ends: two
system calls and a page fault per call (`strace`, `perf stat`). A one-row read through
a driver unit (`quizbot.driver`), whose pool checkout and return are two such calls,
cost 140.6 µs of the process's CPU with a new greenlet per call and 103.6 µs on
reused ones; the checkout and return alone 41.2 and 19.0 µs (a 2.3 GHz Xeon,
2026-12-08, one call after another, uvloop).

`run(fn, *args)` is `greenlet_spawn(fn, *args)` on an idle greenlet of this thread
when there is one: `fn` may call SQLAlchemy's `await_()` as under `greenlet_spawn`, it
runs in the caller's context (its context variables, read and set), and its
exceptions (a cancellation thrown in at an `await_()` included) come out of `run`.
A greenlet goes back to its thread's idle list after each call, holding nothing of
it, up to `IDLE_MAX` of them; the others are ended. Unlike `greenlet_spawn`, a
greenlet ended by a `GreenletExit` thrown in at an `await_()` makes `run` raise
`RuntimeError` rather than return the exception.
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
        raise  # the worker is being ended: let it end
    except BaseException as error:
        return _Finished(None, error)


def _serve(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """A worker's body: one call after another, suspended in between.

    A module function, not a method: nothing here refers to the worker itself, so a
    worker nobody keeps is freed (and ended) like any greenlet.
    """
    while True:
        finished = _call(fn, args)
        fn = args = None  # type: ignore[assignment]  # nothing of the call kept while idle
        # `run` empties `finished` before it returns: the frame keeps an empty shell.
        fn, args = getcurrent().parent.switch(finished)


class _Worker(greenlet):  # type: ignore[misc]
    """A greenlet that runs one call after another (`_serve`)."""

    # What SQLAlchemy's `await_()` checks before handing an awaitable to the parent.
    __sqlalchemy_greenlet_provider__ = True

    def __init__(self) -> None:
        super().__init__(_serve)


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
    worker.gr_context = current.gr_context  # the caller's context variables
    worker.parent = current
    step = worker.switch(fn, args)
    while not isinstance(step, _Finished):
        if worker.dead:  # only if something threw GreenletExit in at an await_()
            raise RuntimeError("the greenlet running a pool call ended") from step
        awaitable: Awaitable[Any] = step
        try:
            value = await awaitable
        except BaseException:
            # Back to whoever resumes this coroutine, should that not be its starter.
            worker.parent = getcurrent()
            step = worker.throw(*sys.exc_info())
        else:
            worker.parent = getcurrent()
            step = worker.switch(value)
    result, error = step.value, step.error
    step.value = step.error = None  # the idle worker's frame still refers to `step`
    worker.gr_context = None  # an idle greenlet holds no caller's context
    if len(workers) < IDLE_MAX:
        workers.append(worker)
    else:
        worker.throw()  # GreenletExit: ends it now, at its switch
    if error is not None:
        try:
            raise error
        finally:
            error = None  # no cycle through this frame's traceback
    returned: T = result
    return returned
