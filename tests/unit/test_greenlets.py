"""`quizbot.greenlets.run` behaves as SQLAlchemy's `greenlet_spawn` (results, errors,
awaits through `await_()`, context variables, cancellation) while reusing its greenlets,
and keeps nothing of a call once it returned."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import weakref
from typing import Any

import pytest
from greenlet import getcurrent, greenlet
from sqlalchemy.util import await_only

from quizbot import greenlets

ASKED: contextvars.ContextVar[str] = contextvars.ContextVar("asked", default="nobody")


class Payload:
    """An object whose lifetime the tests watch through a weak reference."""


def _add(a: int, b: int) -> int:
    return a + await_only(asyncio.sleep(0, result=b))


def _idle() -> list[greenlet]:
    return greenlets._idle.workers


async def test_a_call_returns_its_value_and_awaits_what_it_hands_over() -> None:
    assert await greenlets.run(_add, 2, 3) == 5
    assert await greenlets.run(lambda: "no await") == "no await"


async def test_a_call_s_exception_comes_out_and_its_greenlet_goes_back_idle() -> None:
    ran_on: list[greenlet] = []

    def fail() -> None:
        ran_on.append(getcurrent())
        await_only(asyncio.sleep(0))
        raise LookupError("no such row")

    with pytest.raises(LookupError, match="no such row"):
        await greenlets.run(fail)
    assert ran_on[0] is not getcurrent()
    assert _idle()[-1] is ran_on[0]
    assert await greenlets.run(_add, 1, 1) == 2


async def test_one_greenlet_serves_one_call_after_another() -> None:
    await greenlets.run(_add, 0, 0)  # at least one is idle now
    seen: list[greenlet] = []

    def where() -> None:
        seen.append(getcurrent())
        await_only(asyncio.sleep(0))

    idle_before = greenlets.idle_workers()
    await greenlets.run(where)
    await greenlets.run(where)
    assert seen[0] is seen[1]
    assert isinstance(seen[0], greenlets._Worker)
    assert greenlets.idle_workers() == idle_before


async def test_calls_in_flight_at_once_each_have_their_own_greenlet() -> None:
    gate = asyncio.Event()
    seen: list[greenlet] = []

    def wait_for_gate(name: str) -> str:
        seen.append(getcurrent())
        await_only(gate.wait())
        return name

    calls = [asyncio.create_task(greenlets.run(wait_for_gate, n)) for n in ("a", "b", "c")]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*calls) == ["a", "b", "c"]
    assert len({id(g) for g in seen}) == 3


async def test_a_call_runs_in_its_caller_s_context_and_the_idle_keep_none() -> None:
    def asked() -> str:
        await_only(asyncio.sleep(0))
        return ASKED.get()

    def answer() -> None:
        ASKED.set("set inside")

    async def ask(name: str) -> str:
        ASKED.set(name)
        return await greenlets.run(asked)

    # Two tasks with contexts of their own, both in flight at once.
    assert await asyncio.gather(ask("ada"), ask("grace")) == ["ada", "grace"]
    assert await greenlets.run(asked) == "nobody"

    async def set_inside() -> str:
        await greenlets.run(answer)
        return ASKED.get()  # as under greenlet_spawn: the caller's context was set

    assert await asyncio.create_task(set_inside()) == "set inside"
    assert all(worker.gr_context is None for worker in _idle())


async def test_a_cancellation_is_thrown_in_at_the_await_and_comes_out() -> None:
    cleaned: list[str] = []
    ran_on: list[greenlet] = []

    def stuck() -> None:
        ran_on.append(getcurrent())
        try:
            await_only(asyncio.sleep(60))
        finally:
            cleaned.append("cleaned up")

    call = asyncio.create_task(greenlets.run(stuck))
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert cleaned == ["cleaned up"]
    assert _idle()[-1] is ran_on[0]  # back, and serving
    assert await greenlets.run(_add, 4, 5) == 9


async def test_a_call_may_handle_what_interrupted_its_await() -> None:
    def tolerant() -> str:
        try:
            await_only(asyncio.wait_for(asyncio.sleep(60), timeout=0.01))
        except TimeoutError:
            return await_only(asyncio.sleep(0, result="carried on"))
        return "not interrupted"

    assert await greenlets.run(tolerant) == "carried on"


async def test_nothing_of_a_finished_call_is_kept() -> None:
    """Neither its arguments nor its result, nor a failed call's exception (whose
    traceback holds the call's frames)."""
    argument, failed_with = Payload(), Payload()

    def give(_argument: Payload) -> Payload:
        await_only(asyncio.sleep(0))
        return Payload()

    def fail(_argument: Payload) -> None:
        await_only(asyncio.sleep(0))
        raise LookupError("failed")

    returned = await greenlets.run(give, argument)
    with pytest.raises(LookupError):
        await greenlets.run(fail, failed_with)
    watched = [weakref.ref(argument), weakref.ref(returned), weakref.ref(failed_with)]
    del argument, returned, failed_with
    gc.collect()
    assert [ref() for ref in watched] == [None, None, None]


async def test_greenlets_beyond_the_idle_limit_are_ended() -> None:
    gate = asyncio.Event()
    seen: list[greenlet] = []

    def wait_for_gate() -> None:
        seen.append(getcurrent())
        await_only(gate.wait())

    calls = [
        asyncio.create_task(greenlets.run(wait_for_gate)) for _ in range(greenlets.IDLE_MAX + 5)
    ]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*calls)
    assert greenlets.idle_workers() == greenlets.IDLE_MAX
    kept = {id(worker) for worker in _idle()}
    assert all(g.dead for g in seen if id(g) not in kept)
    assert sum(not g.dead for g in seen) == len(kept & {id(g) for g in seen})


def test_each_thread_has_its_own_greenlets_and_they_go_with_it() -> None:
    """A greenlet can only run in its thread: a call from another thread's event loop
    never takes this thread's idle ones, and its own are freed when it ends."""
    asyncio.run(greenlets.run(_add, 1, 2))  # leaves an idle one in this thread
    here = greenlets.idle_workers()
    results: list[Any] = []

    def other_thread() -> None:
        try:
            results.append(asyncio.run(greenlets.run(_add, 3, 4)))
            results.append(greenlets.idle_workers())
            results.append(weakref.ref(_idle()[0]))
        except BaseException as error:  # reported to the test below
            results.append(error)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert results[:2] == [7, 1]
    assert greenlets.idle_workers() == here
    gc.collect()
    assert results[2]() is None
