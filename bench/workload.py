"""Simulated players: what they do, against any variant (a `Driver`).

Two kinds of players share a stage:

- solo players: start a solo quiz, answer each question after a think time
  (the bot then reveals the answers and moves on: `advance`), finish, look at
  their stats and the
  leaderboard (sometimes this week's);
- channel groups: `burst_size` members of one guild in a channel quiz; every
  question is answered by all of them within a burst window (one second at the
  standard scale), which is the hot path the design worries about.

Latency is measured from the moment a player clicks (the scheduled time), so
a command that waited for a blocked event loop is charged for the wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, Protocol, TypeVar

from bench.config import Scale
from bench.dataset import GUILD_BASE, RIGHT, USER_BASE, WRONG
from bench.metrics import BACKGROUND, BATCHES, BatchRecord, Recorder, invocation

T = TypeVar("T")
# (delay before the click, command, the call, the session it acts on)
Call = tuple[float, str, Callable[[], Awaitable[Any]], int | None]

# Channels of the simulated quizzes: far above the seeded ones (3,000,000 + n).
CHANNEL_BASE = 4_000_000_000
# Share of a stage's players that play in channel quizzes (the rest play solo).
CHANNEL_SHARE = 0.5
CORRECT_RATE = 0.6
COMMANDS = (
    "start",
    "review",
    "answer",
    "advance",
    "finish",
    "stats",
    "leaderboard",
    "leaderboard_week",
)


async def click_at(due: float) -> float:
    """Sleep until `due` (`time.perf_counter()`'s clock) and return the click's time.

    Always yields once, so a driver that never awaits cannot starve the other players.
    The loop's timers run on its own clock (uvloop's in whole milliseconds), which ends
    a sleep early by `perf_counter`'s: 717 of 2,000 sleeps of 0.5-10 ms, by up to 1.4 ms
    (2026-12-07). The click is then when the sleep ended. Before, latency counted from
    `due`, so a command that began early counted up to that much less than it took
    (and less than it held a connection, which the smoke test caught).
    """
    await asyncio.sleep(max(due - time.perf_counter(), 0.0))
    return min(due, time.perf_counter())


@dataclass(frozen=True)
class Member:
    """A seeded guild member a simulated player acts as."""

    index: int
    guild_id: int
    user_id: int
    name: str


@dataclass(frozen=True)
class Shown:
    """The question a quiz is showing."""

    session_id: int
    question_id: int
    position: int


class Ack(NamedTuple):
    """An answer the variant acknowledged as recorded.

    A tuple of ints: the garbage collector stops tracking it, so the tens of thousands a
    run keeps for the integrity check do not lengthen the bot's full collections.
    """

    session_id: int
    question_id: int
    user_id: int
    points: int


class Driver(Protocol):
    """The commands of one variant; each call is one user event (one unit of work)."""

    async def start(self, m: Member, channel_id: int, mode: str, count: int) -> Shown: ...

    async def review(self, m: Member, channel_id: int, count: int) -> Shown | None:
        """A solo quiz of the member's questions due for review; None when none is due."""
        ...

    async def answer(
        self, m: Member, session_id: int, question_id: int, given: str
    ) -> Ack | None: ...

    async def advance(self, session_id: int, question_id: int, position: int) -> Shown | None:
        """The question's time is up: reveal who answered it, then move to the next one."""
        ...

    async def finish(self, session_id: int) -> None: ...

    async def stats(self, m: Member) -> None: ...

    async def leaderboard(self, m: Member, week: bool) -> None: ...


@dataclass
class Action:
    """One command of a traced step (for the raw replay)."""

    delay: float
    name: str
    statements: list[tuple[str, tuple[Any, ...]]]
    # The session the command acted on (quizbot's id), to remap in the replay.
    session_id: int | None = None
    # A group-committed answer: the index of the batch that wrote it (in the stage).
    batch: int | None = None
    # The answer the command acknowledged (quizbot's session id).
    ack: Ack | None = None
    # When the player clicked, in seconds from the start of the stage.
    at: float | None = None


@dataclass
class BatchTrace:
    """One group-commit flush, for the raw replay: replayed once, for all its answers."""

    index: int
    size: int  # answers the flush covered
    attributed: int  # of which are traced answer actions (the replay waits for them)
    full: bool  # it flushed at the size limit, without waiting for the window
    # The flush's statements and BEGIN / COMMIT / ROLLBACK markers, in order.
    statements: list[tuple[str, tuple[Any, ...]]]
    kind: str = "answers"  # or "messages" (BatchRecord.kind)


@dataclass
class StageTrace:
    """Per actor group, its steps; a step's actions ran concurrently."""

    players: int
    groups: list[list[list[Action]]] = field(default_factory=list)
    warmup: bool = False
    flood: bool = False
    batches: list[BatchTrace] = field(default_factory=list)
    # The committer's window: how long a batch's first answer waited for others.
    batch_window_s: float = 0.0


def members_for_stage(
    scale: Scale, players: int, *, channel_share: float = CHANNEL_SHARE, burst_size: int = 0
) -> tuple[list[list[Member]], list[Member]]:
    """Split `players` seeded members into channel groups (same guild) and solo players.

    `channel_share` of them play in groups of `burst_size` (default: the scale's).
    """
    per_guild = scale.members // scale.guilds
    used = [0] * scale.guilds

    def take(guild: int) -> Member:
        # Member i belongs to guild (i % guilds): i = guild + guilds * k (i >= 1).
        k = used[guild]
        used[guild] += 1
        i = guild + scale.guilds * k if guild else scale.guilds * (k + 1)
        if i > scale.members or k >= per_guild:
            raise ValueError(f"scale {scale.name} has too few members for {players} players")
        return Member(i, GUILD_BASE + 1 + guild, USER_BASE + i, f"player{i}")

    burst = max(1, min(burst_size or scale.burst_size, players))
    n_groups = int(players * channel_share) // burst
    groups: list[list[Member]] = []
    for g in range(n_groups):
        guild = g % scale.guilds
        groups.append([take(guild) for _ in range(burst)])
    solo_count = players - n_groups * burst
    solo = [take((n_groups + s) % scale.guilds) for s in range(solo_count)]
    return groups, solo


class Stage:
    """One load level of one variant: runs the players until the deadline."""

    def __init__(
        self,
        driver: Driver,
        scale: Scale,
        players: int,
        stage_index: int,
        *,
        seed: int,
        capture: bool = False,
        warmup: bool = False,
        flood: bool = False,
    ) -> None:
        self.driver = driver
        self.scale = scale
        self.players = players
        self.stage_index = stage_index
        self.rng = random.Random(seed * 1000 + stage_index)
        self.recorder = Recorder()
        self.acks: list[Ack] = []
        self.sessions: set[int] = set()
        self.capture = capture
        self.trace = StageTrace(
            players,
            warmup=warmup,
            flood=flood,
            batch_window_s=float(getattr(driver, "batch_window_s", 0.0)),
        )
        self.batches: list[BatchRecord] = []
        # A flood stage has no think time: players click again as soon as they have an answer.
        self.think = 0.0 if flood else scale.think_ms / 1000
        self.burst_window = min(1.0, 2 * self.think)
        self.began = time.perf_counter()
        self.deadline = 0.0
        self.hard_deadline = 0.0
        self.done_commands = 0

    # -- timing helpers -------------------------------------------------------

    def _think(self) -> float:
        return self.rng.uniform(0.5, 1.5) * self.think

    def stopped(self) -> bool:
        return time.perf_counter() >= self.deadline

    def hurry(self) -> bool:
        return time.perf_counter() >= self.hard_deadline

    async def _act(
        self, delay: float, name: str, fn: Callable[[], Awaitable[T]], session_id: int | None
    ) -> tuple[T | None, Action]:
        due = await click_at(time.perf_counter() + delay)
        stats = self.recorder.stats(name)
        result: T | None = None
        with invocation(name, capture=self.capture) as inv:
            try:
                result = await fn()
            except Exception as exc:
                stats.fail(exc)
            else:
                stats.add(time.perf_counter() - due, inv)
        self.done_commands += 1
        if session_id is None and isinstance(result, Shown):
            session_id = result.session_id  # a start: the session it created
        action = Action(delay, name, inv.captured or [], session_id, at=due - self.began)
        if self.capture:
            action.batch = inv.batch.index if inv.batch is not None else None
            action.ack = result if isinstance(result, Ack) else None
        return result, action

    async def _step(
        self,
        trace: list[list[Action]],
        actions: Sequence[Call],
    ) -> list[Any]:
        done = await asyncio.gather(*(self._act(*a) for a in actions))
        if self.capture:
            trace.append([action for _, action in done])
        return [result for result, _ in done]

    def _given(self) -> str:
        return RIGHT if self.rng.random() < CORRECT_RATE else WRONG[0]

    def _ack(self, ack: Ack | None) -> None:
        if ack is not None:
            self.acks.append(ack)

    # -- players ---------------------------------------------------------------

    async def _play_quiz(
        self, trace: list[list[Action]], shown: Shown, answerers: list[Member], burst: bool
    ) -> None:
        d = self.driver
        sid = shown.session_id
        self.sessions.add(sid)
        current: Shown | None = shown
        while current is not None and not self.hurry():
            q = current
            answers: list[Call] = [
                (
                    self.rng.uniform(0, self.burst_window) if burst else self._think(),
                    "answer",
                    partial(d.answer, m, sid, q.question_id, self._given()),
                    sid,
                )
                for m in answerers
            ]
            for ack in await self._step(trace, answers):
                self._ack(ack)
            (current,) = await self._step(
                trace,
                [(0.0, "advance", partial(d.advance, sid, q.question_id, q.position), sid)],
            )
        await self._step(trace, [(0.0, "finish", partial(d.finish, sid), sid)])

    async def _solo(self, m: Member, player: int) -> None:
        d = self.driver
        trace: list[list[Action]] = []
        self.trace.groups.append(trace)
        channel = CHANNEL_BASE + self.stage_index * 1_000_000 + player
        loops = 0
        count = self.scale.questions_per_quiz
        while not self.stopped():
            # Every third quiz of a solo player is a review of their due questions.
            call: Callable[[], Awaitable[Shown | None]]
            if loops % 3 == 1:
                name, call = "review", partial(d.review, m, channel, count)
            else:
                name, call = "start", partial(d.start, m, channel, "solo", count)
            (shown,) = await self._step(trace, [(self._think(), name, call, None)])
            if shown is not None:
                await self._play_quiz(trace, shown, [m], burst=False)
            if self.stopped():
                break
            await self._step(trace, [(self._think(), "stats", partial(d.stats, m), None)])
            # A third of the boards are this week's, spread over the players: a stage is
            # one or two loops long, so a third loop would never come.
            week = (player + loops) % 3 == 2
            name = "leaderboard_week" if week else "leaderboard"
            await self._step(trace, [(self._think(), name, partial(d.leaderboard, m, week), None)])
            loops += 1

    async def _channel(self, group: list[Member], index: int) -> None:
        d = self.driver
        trace: list[list[Action]] = []
        self.trace.groups.append(trace)
        host = group[0]
        channel = CHANNEL_BASE + self.stage_index * 1_000_000 + 500_000 + index
        loops = 0
        while not self.stopped():
            (shown,) = await self._step(
                trace,
                [
                    (
                        self._think(),
                        "start",
                        partial(d.start, host, channel, "channel", self.scale.questions_per_quiz),
                        None,
                    )
                ],
            )
            if shown is not None:
                await self._play_quiz(trace, shown, group, burst=True)
            if self.stopped():
                break
            # After the summary a few members look at the board and their stats.
            member = group[loops % len(group)]
            await self._step(
                trace,
                [
                    (self._think(), "stats", partial(d.stats, member), None),
                    (self._think(), "leaderboard", partial(d.leaderboard, host, False), None),
                ],
            )
            loops += 1

    async def run(self, seconds: float) -> float:
        """Run every player until `seconds` have passed (quizzes under way are finished).

        Returns:
            The stage's wall time in seconds.
        """
        if self.trace.flood:
            # The answer flood: a trivia night, every player in a big channel quiz.
            groups, solo = members_for_stage(
                self.scale, self.players, channel_share=1.0, burst_size=self.scale.flood_group
            )
        else:
            groups, solo = members_for_stage(self.scale, self.players)
        began = self.began = time.perf_counter()
        self.deadline = began + seconds
        # Past this, quizzes under way stop asking questions and just finish.
        self.hard_deadline = self.deadline + max(2 * seconds, 10 * self.think)
        tasks = [self._channel(g, i) for i, g in enumerate(groups)]
        tasks += [self._solo(m, i) for i, m in enumerate(solo)]
        if self.capture:
            BACKGROUND.captured = []
        BATCHES.start(capture=self.capture)
        try:
            await asyncio.gather(*tasks)
        finally:
            background, BACKGROUND.captured = BACKGROUND.captured, None
            self.batches = BATCHES.take()
        if self.capture:
            self.trace.batches = [
                BatchTrace(b.index, b.size, b.attributed, b.full, b.captured or [], b.kind)
                for b in self.batches
            ]
        if background:
            # Statements of other background tasks (group-commit flushes are batches, see
            # above) replay as their own sequence, at the same pace.
            steps: list[list[Action]] = []
            previous = began
            for at, sql, params in background:
                steps.append(
                    [Action(max(0.0, at - previous), "background", [(sql, params)], at=at - began)]
                )
                previous = at
            self.trace.groups.append(steps)
        return time.perf_counter() - began
