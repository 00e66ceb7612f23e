"""What an answer costs the bot's process, measured apart from any load.

The load runs give the CPU per answer of a whole process: the simulated players, the
other commands and whatever else shared the machine are in it, and the development
VMs' speed moves by up to half within a run. This measures one thing alone, on an
otherwise idle process: the members of one channel quiz all answer its question at
once (a trivia night's burst), through `QuizService.answer` as the cog calls it (the
question from the cache, the answer checked, group-committed, the outcome returned),
question after question. Process CPU and wall time of each burst, from the first
answer's call to the last outcome; the reveal and the move to the next question
between bursts are not counted. When the database server runs on this machine, also
its CPU per answer: its CPU during each burst after the first (the reveals and moves
between them left out, 1-2 ms of the server's each), summed, over those bursts'
answers. With nothing else running, that is what the answers cost the server, where
the load runs' figure has every other command in it. The kernel reports a process's
CPU in ticks of 10 ms, a quarter of a burst's: each burst's figure alone is too
coarse, and the sum over eleven bursts of 240 answers resolves 4 µs per answer.

The first burst creates the players' user and member rows (first answers), so it is
reported apart; the rest are the steady state. The benchmark runs it (`run`) in a process
of its own: it tunes the garbage collector as the bot does, which must not leak into the
benchmark's main process (or a test's).
"""

from __future__ import annotations

import random
import statistics
import time
from asyncio import TaskGroup
from typing import Any, Protocol

from bench.database import local_server_cpu
from bench.quizbot_driver import settings_with
from bench.workload import CORRECT_RATE
from quizbot.app import App
from quizbot.models import SessionMode
from quizbot.runtime import tune_garbage_collector
from quizbot.services.quiz import QuizFilters

PLAYERS = 240
QUESTIONS = 12
SEED = 42
# Ids past any seeded guild, channel and member (`bench.dataset` numbers from 1).
GUILD_ID = 9_000_000_001
CHANNEL_ID = 9_000_000_002
FIRST_USER_ID = 9_100_000_000


class CpuMeter(Protocol):
    """What reads the server's CPU (`bench.metrics.ServerCpu`; a test's fake)."""

    def seconds(self) -> float | None: ...


def _wrong(answer: str, choices: tuple[str, ...]) -> str:
    """Any choice but the right one (or a word no free-text answer accepts)."""
    return next((c for c in choices if c != answer), "certainly not this")


async def measure(
    url: str,
    players: int = PLAYERS,
    questions: int = QUESTIONS,
    *,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """Bursts of `players` simultaneous answers to each of `questions` questions.

    `meter` reads the server's CPU; by default the local server's, found from `url`
    (none when the server runs elsewhere).

    Returns:
        players, the bursts measured (all but the first), medians over them of the
        process CPU per answer (µs), the wall time (ms) and the batches the answers were
        written in; the server's CPU per answer over them (µs; None when it was not
        measured: a server on another machine, a reading that failed or went backwards);
        and the first burst's figures.

    Raises:
        RuntimeError: a burst recorded fewer answers than it sent, or the quiz had
            fewer than two questions (nothing left to measure after the first burst).
    """
    # The `quizbot` variant's settings, without the periodic pool checks (nothing to
    # watch in a few seconds, and their task would share the measured process).
    settings, _applied, _skipped = settings_with(url, {"db_pool_monitor_interval": 0})
    if meter is None:
        meter = await local_server_cpu(url)
    # The server's CPU seconds during each burst (None: not measured).
    server_cpu: list[float | None] = []
    app = App.create(settings, url)
    rng = random.Random(SEED)
    try:
        await app.bootstrap(seed=False, warm=True)  # as the bot does
        tune_garbage_collector()
        view = await app.quiz.start(
            guild_id=GUILD_ID,
            guild_name="burst",
            channel_id=CHANNEL_ID,
            user_id=FIRST_USER_ID,
            display_name="host",
            mode=SessionMode.CHANNEL,
            filters=QuizFilters(count=questions),
        )
        batcher = app.quiz.answer_batcher
        # CPU s, wall s, answers recorded, batches written
        bursts: list[tuple[float, float, int, int]] = []

        async def one(n: int, question_id: int, given: str) -> bool:
            outcome = await app.quiz.answer(
                session_id=view.session_id,
                question_id=question_id,
                user_id=FIRST_USER_ID + n,
                display_name=f"player {n}",
                given=given,
            )
            return outcome.recorded

        current: Any = view
        while current is not None:
            question = await app.quiz.question(current.question_id)
            wrong = _wrong(question.answer, current.choices)
            # Right as often as the workload's players are.
            givens = [
                question.answer if rng.random() < CORRECT_RATE else wrong for _ in range(players)
            ]
            batches = batcher.stats.batches if batcher is not None else 0
            # Read outside the process's clocks: reading costs this process CPU.
            server_before = meter.seconds() if meter is not None else None
            cpu, wall = time.process_time(), time.perf_counter()
            # A task group: if one answer fails, the others are cancelled and awaited
            # before the app closes under them.
            async with TaskGroup() as group:
                tasks = [
                    group.create_task(one(n, current.question_id, given))
                    for n, given in enumerate(givens)
                ]
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            server_after = meter.seconds() if meter is not None else None
            server_cpu.append(
                server_after - server_before
                if server_before is not None and server_after is not None
                else None
            )
            batches = (batcher.stats.batches if batcher is not None else 0) - batches
            bursts.append((cpu, wall, sum(t.result() for t in tasks), batches))
            _results, current = await app.quiz.reveal_and_advance(
                view.session_id, current.question_id, current.position
            )
        await app.quiz.finish(view.session_id)
    finally:
        await app.close()
    if any(n != players for _cpu, _wall, n, _b in bursts):
        raise RuntimeError(f"a burst recorded fewer than its {players} answers: {bursts}")
    if len(bursts) < 2:
        raise RuntimeError("the quiz had one question: no burst after the first to measure")
    first, steady = bursts[0], bursts[1:]
    return {
        "players": players,
        "bursts": len(steady),
        "cpu_us_per_answer": statistics.median(c for c, _w, _n, _b in steady) / players * 1e6,
        "server_cpu_us_per_answer": _server_us_per_answer(server_cpu[1:], players),
        "wall_ms_per_burst": statistics.median(w for _c, w, _n, _b in steady) * 1000,
        "batches_per_burst": statistics.median(b for _c, _w, _n, b in steady),
        "first_cpu_us_per_answer": first[0] / players * 1e6,
        "first_wall_ms": first[1] * 1000,
    }


def _server_us_per_answer(per_burst: list[float | None], players: int) -> float | None:
    """The server's CPU per answer (µs) over bursts of `players` answers; None when a
    burst was not measured or the total went backwards (no cost at all)."""
    readings = [r for r in per_burst if r is not None]
    if not per_burst or len(readings) < len(per_burst) or sum(readings) < 0:
        return None
    return sum(readings) / (players * len(per_burst)) * 1e6


def run(url: str, players: int = PLAYERS) -> dict[str, Any]:
    """`measure` on uvloop, like the bot (the entry point of the benchmark's child process)."""
    from quizbot.cli import run_async

    result: dict[str, Any] = run_async(measure(url, players=players))
    return result
