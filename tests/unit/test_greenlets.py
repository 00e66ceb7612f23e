"""`quizbot.greenlets.run` behaves as SQLAlchemy's `greenlet_spawn` (results, errors,
awaits through `await_()`, context variables, cancellation) while reusing its greenlets."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from greenlet import getcurrent, greenlet
from sqlalchemy.util import await_only

from quizbot import greenlets

ASKED: contextvars.ContextVar[str] = contextvars.ContextVar("asked", default="nobody")


def _add(a: int, b: int) -> int:
    return a + await_only(asyncio.sleep(0, result=b))


def _fail() -> None:
    raise LookupError("no such row")


async def test_a_call_returns_its_value_and_awaits_what_it_hands_over() -> None:
    assert await greenlets.run(_add, 2, 3) == 5
    assert await greenlets.run(lambda: "no await") == "no await"


async def test_a_call_s_exception_comes_out_and_the_greenlet_is_kept() -> None:
    with pytest.raises(LookupError, match="no such row"):
        await greenlets.run(_fail)
    assert greenlets.idle_workers() >= 1
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
    assert seen[0] is not getcurrent()
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


async def test_a_call_sees_its_caller_s_context_variables_and_keeps_none() -> None:
    def asked() -> str:
        await_only(asyncio.sleep(0))
        return ASKED.get()

    async def ask(name: str) -> str:
        ASKED.set(name)
        return await greenlets.run(asked)

    # Two tasks, two contexts, interleaved on the same idle greenlets.
    assert await asyncio.gather(ask("ada"), ask("grace")) == ["ada", "grace"]
    assert await greenlets.run(asked) == "nobody"


async def test_a_cancellation_is_thrown_in_at_the_await_and_comes_out() -> None:
    cleaned: list[str] = []

    def stuck() -> None:
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
    assert await greenlets.run(_add, 4, 5) == 9  # the greenlets still serve


async def test_a_call_may_handle_what_interrupted_its_await() -> None:
    def tolerant() -> str:
        try:
            await_only(asyncio.wait_for(asyncio.sleep(60), timeout=0.01))
        except TimeoutError:
            return await_only(asyncio.sleep(0, result="carried on"))
        return "not interrupted"

    assert await greenlets.run(tolerant) == "carried on"


async def test_idle_greenlets_are_kept_up_to_a_limit() -> None:
    gate = asyncio.Event()

    def wait_for_gate() -> None:
        await_only(gate.wait())

    calls = [
        asyncio.create_task(greenlets.run(wait_for_gate)) for _ in range(greenlets.IDLE_MAX + 5)
    ]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*calls)
    assert greenlets.idle_workers() == greenlets.IDLE_MAX


def test_each_thread_has_its_own_greenlets() -> None:
    """A greenlet can only run in its thread: a call from another thread's event loop
    never takes this thread's idle ones."""
    asyncio.run(greenlets.run(_add, 1, 2))  # leaves an idle one in this thread
    here = greenlets.idle_workers()
    results: list[object] = []

    def other_thread() -> None:
        try:
            results.append(asyncio.run(greenlets.run(_add, 3, 4)))
            results.append(greenlets.idle_workers())
        except BaseException as error:  # reported to the test below
            results.append(error)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert results == [7, 1]
    assert greenlets.idle_workers() == here
