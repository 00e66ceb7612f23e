"""Benchmark scales and options: what one `quizbot bench` run does."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from quizbot.config import Settings

VARIANTS = ("quizbot", "raw", "legacy", "pgbench")

# A variant serves a load when every command's p95 stays under this (the plan's
# "concurrent users" claim and the ">= 10x legacy's players") and none failed.
P95_LIMIT_MS = 500.0


def served(stage: dict[str, Any]) -> bool:
    """Whether a stage's load was served: every command's p95 under P95_LIMIT_MS and no
    command failed (a failed command, a pool timeout say, is left out of the latencies,
    so a stage of failures alone would otherwise look fast)."""
    return bool(
        stage["all"]["worst_command_p95_ms"] < P95_LIMIT_MS and not stage["all"].get("errors")
    )


@dataclass(frozen=True)
class Scale:
    """The dataset size and the default load of one scale."""

    name: str
    guilds: int
    members: int
    questions: int
    past_answers: int
    players: tuple[int, ...]
    stage_seconds: float
    think_ms: float
    questions_per_quiz: int = 5
    # Players per channel quiz (the burst: they all answer each question within a second).
    burst_size: int = 20
    # Players per channel quiz in the answer flood (every player in one, no think time).
    flood_group: int = 50
    # Loads past the ramp that quizbot and legacy go on to while the last stage was
    # `served`: where the ramp ends below their limits, the capacity claim is only a
    # lower bound. Legacy served 300 players on a fast machine (2026-12-08 01:28), so
    # deciding ">= 10x legacy" can take 3,000. The other variants stop at the ramp.
    capacity_players: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        loads = (*self.players, *self.capacity_players)
        if self.capacity_players and list(loads) != sorted(set(loads)):
            raise ValueError(f"capacity stages {self.capacity_players} must rise past the ramp")


SCALES: dict[str, Scale] = {
    "smoke": Scale(
        name="smoke",
        guilds=2,
        members=200,
        questions=300,
        past_answers=2_000,
        players=(5, 20),
        stage_seconds=2.0,
        capacity_players=(40,),
        think_ms=50,
        questions_per_quiz=3,
        burst_size=5,
        flood_group=5,
    ),
    "standard": Scale(
        name="standard",
        guilds=50,
        members=20_000,
        questions=2_000,
        past_answers=200_000,
        players=(10, 100, 300, 1000),
        stage_seconds=12.0,
        capacity_players=(2000, 3000),
        think_ms=1000,
    ),
    # Optional: seeding works, but the full ramp takes long; see docs/performance.md.
    "large": Scale(
        name="large",
        guilds=1,
        members=1_000_000,
        questions=100_000,
        past_answers=10_000_000,
        players=(10, 100, 1000, 2000),
        stage_seconds=15.0,
        think_ms=1000,
    ),
}


@dataclass(frozen=True)
class BenchConfig:
    """Everything a run needs; built from the command line or by the smoke test."""

    scale: Scale
    variants: tuple[str, ...] = VARIANTS
    out_dir: Path = Path("bench/results")
    # Server to create the throwaway databases on (a URL of any database there).
    server_url: str | None = None
    # Stop ramping a variant once a stage's p95 over all commands exceeds this many seconds.
    give_up_p95_s: float = 5.0
    keep_databases: bool = False
    progress: bool = True
    seed: int = 42
    # Pool of raw asyncpg: the bot's defaults (the quizbot variant runs with its settings).
    pool_size: int = Settings.model_fields["db_pool_size"].default
    max_overflow: int = Settings.model_fields["db_max_overflow"].default
    pgbench_seconds: int = 5
    # Players of the no-think-time stage after the ramp (sustained answer rate); 0: none.
    flood_players: int = 1000
    explain: bool = True
    # Redis for the rank mirror's measurement (the load runs keep the in-process cache).
    redis_url: str | None = "redis://127.0.0.1:6379/0"
    extra: dict[str, str] = field(default_factory=dict)

    def with_overrides(
        self,
        *,
        players: tuple[int, ...] | None = None,
        duration: float | None = None,
        think_ms: float | None = None,
    ) -> BenchConfig:
        """A copy with the scale's load replaced where an option was given (players
        given: exactly those stages, no capacity stages after them)."""
        scale = self.scale
        if players:
            scale = replace(scale, players=players, capacity_players=())
        if duration is not None:
            scale = replace(scale, stage_seconds=duration)
        if think_ms is not None:
            scale = replace(scale, think_ms=think_ms)
        return replace(self, scale=scale)
