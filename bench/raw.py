"""The raw baseline: quizbot's own statements, replayed through a bare asyncpg pool.

The quizbot variant records, per player, every command it ran with the exact
SQL and parameters it sent to asyncpg. This replay runs the same players with
the same think times, each command's statements in one transaction on a pooled
connection, and nothing else: no ORM, no services, no cache logic, no pre-ping.
The difference to the quizbot variant is what the ORM and our Python cost.

Session ids are the one thing that differs between the two databases: the
runner starts each variant's identity at its own base, so a parameter in the
quizbot range is a session id, remapped to the id the replayed INSERT returned.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from bench.metrics import Recorder, invocation
from bench.workload import Action, StageTrace

QUIZBOT_SESSION_BASE = 5_000_000_000
REPLAY_SESSION_BASE = 7_000_000_000
# How long a replayed statement waits for the start that creates its session.
MAX_WAIT_MS = 2000


def _is_quizbot_session(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and QUIZBOT_SESSION_BASE <= value < REPLAY_SESSION_BASE
    )


class Replayer:
    """Replays traced stages on an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.sessions: dict[int, int] = {}
        self.unmapped = 0

    def _map(self, value: Any) -> Any:
        if isinstance(value, list):  # arrays of ids in batched statements
            return [self._map(v) for v in value]
        if _is_quizbot_session(value):
            mapped = self.sessions.get(value)
            if mapped is None:
                self.unmapped += 1
                return value
            return mapped
        return value

    def _params(self, params: tuple[Any, ...]) -> list[Any]:
        return [self._map(value) for value in params]

    def _waiting_for(self, statements: list[tuple[str, tuple[Any, ...]]]) -> bool:
        """True while a statement names a session whose replayed start has not run yet."""

        def unmapped(value: Any) -> bool:
            if isinstance(value, list):
                return any(unmapped(v) for v in value)
            return _is_quizbot_session(value) and value not in self.sessions

        return any(unmapped(v) for _sql, params in statements for v in params)

    async def _await_sessions(self, action: Action) -> None:
        # A background task's statements replay as their own sequence; clocks drift, so
        # one may come before the start that creates its session here. Wait (bounded).
        if action.name == "start":
            return
        for _ in range(MAX_WAIT_MS):
            if not self._waiting_for(action.statements):
                return
            await asyncio.sleep(0.001)

    async def _run(self, action: Action, recorder: Recorder) -> None:
        due = time.perf_counter() + action.delay
        if action.delay > 0:
            await asyncio.sleep(action.delay)
        await self._await_sessions(action)
        stats = recorder.stats(action.name)
        with invocation(action.name) as inv:
            try:
                if action.statements:
                    began = time.perf_counter()
                    async with self.pool.acquire() as conn:
                        inv.pool_wait_s += time.perf_counter() - began
                        inv.checkouts += 1
                        inv.tx += 2  # BEGIN and COMMIT
                        async with conn.transaction():
                            for sql, params in action.statements:
                                inv.statements += 1
                                rows = await conn.fetch(sql, *self._params(params))
                                if (
                                    action.name == "start"
                                    and sql.lstrip().upper().startswith("INSERT INTO QUIZ_SESSIONS")
                                    and rows
                                    and action.session_id is not None
                                ):
                                    self.sessions[action.session_id] = int(rows[0]["id"])
            except Exception as exc:
                stats.fail(exc)
            else:
                stats.add(time.perf_counter() - due, inv)

    async def _group(self, steps: list[list[Action]], recorder: Recorder) -> None:
        for step in steps:
            await asyncio.gather(*(self._run(a, recorder) for a in step))

    async def replay(self, trace: StageTrace, recorder: Recorder) -> float:
        """Replay one stage; returns its wall time."""
        began = time.perf_counter()
        await asyncio.gather(*(self._group(g, recorder) for g in trace.groups))
        return time.perf_counter() - began
