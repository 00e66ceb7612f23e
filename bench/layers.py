"""What one statement costs the bot's process, layer by layer.

The load runs show quizbot's process busier than the raw replay's for the same
statements. This measures where that goes, for one statement quizbot runs on every
`/leaderboard` (a member's points, by key), one call after the other on an idle
machine: process CPU time and wall time per call through

- an autocommit ORM `AsyncSession` from `App.read_sessionmaker` (session, circuit
  breaker, pool checkout, ORM execution): what the hot reads used before;
- a guarded Core `AsyncConnection` (`GuardedConnections`: circuit breaker, pool
  checkout, Core execution; no ORM session), quizbot's hot read path until 2026-12-06;
- quizbot's hot path now: `App.read_connections` (`quizbot.driver`: circuit breaker,
  the pool's raw checkout, the statement compiled once and run by asyncpg);
- asyncpg on a connection checked out of the same pool through `engine.connect()`;
- asyncpg's own pool: acquire, the statement, release (what the raw replay pays per
  command: `bench.raw.create_pool`, without a reset query);
- a bare asyncpg connection (the statement alone).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from bench.config import Scale
from bench.database import asyncpg_args
from bench.dataset import guild_of, user_of
from bench.raw import create_pool
from quizbot.app import App
from quizbot.config import Settings
from quizbot.db import connect_args
from quizbot.resilience import GuardedConnections
from quizbot.services.stats import MEMBER_POINTS

CALLS = 2000
WARM_UP = 200
# The same statement in asyncpg's own parameter style.
_DRIVER_SQL = (
    "SELECT coalesce(display_name, '') AS name, points FROM guild_members "
    "WHERE guild_id = $1 AND user_id = $2"
)


async def _per_call(call: Callable[[], Awaitable[Any]], calls: int) -> dict[str, float]:
    for _ in range(WARM_UP):
        await call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await call()
    return {
        "cpu_us": (time.process_time() - cpu) / calls * 1e6,
        "wall_us": (time.perf_counter() - wall) / calls * 1e6,
    }


async def measure(url: str, scale: Scale, calls: int = CALLS) -> list[dict[str, Any]]:
    """CPU and wall time per call of one indexed one-row read, through each layer."""
    app = App.create(
        Settings(database_url=url, redis_url=None, db_pool_monitor_interval=0, cache_enabled=False),
        url,
    )
    params = {"guild_id": guild_of(1, scale), "me": user_of(1)}  # seeded member 1

    async with contextlib.AsyncExitStack() as opened:
        opened.push_async_callback(app.close)
        bare = await asyncpg.connect(**asyncpg_args(url))
        opened.push_async_callback(bare.close)
        replay_pool = await create_pool(
            asyncpg_args(url),
            min_size=1,
            max_size=1,
            server_settings=connect_args(app.settings)["server_settings"],
        )
        opened.push_async_callback(replay_pool.close)
        return await _layers(app, params, bare, replay_pool, calls)


async def _layers(
    app: App,
    params: dict[str, int],
    bare: asyncpg.Connection,
    replay_pool: asyncpg.Pool,
    calls: int,
) -> list[dict[str, Any]]:
    """Each layer's CPU and wall time per call, on the connections `measure` opened."""

    async def orm_session() -> Any:
        async with app.read_sessionmaker() as session:
            return (await session.execute(MEMBER_POINTS, params)).all()

    core = GuardedConnections(app.engine, app.breaker)

    async def core_connection() -> Any:
        async with core() as conn:
            return (await conn.execute(MEMBER_POINTS, params)).all()

    async def driver_path() -> Any:
        async with app.read_connections() as conn:
            return (await conn.execute(MEMBER_POINTS, params)).all()

    async def pooled_driver() -> Any:
        async with app.engine.connect() as conn:  # in autocommit mode
            raw = await conn.get_raw_connection()
            return await raw.driver_connection.fetch(  # type: ignore[union-attr]
                _DRIVER_SQL, params["guild_id"], params["me"]
            )

    async def replay_pool_driver() -> Any:
        async with replay_pool.acquire() as conn:
            return await conn.fetch(_DRIVER_SQL, params["guild_id"], params["me"])

    async def bare_driver() -> Any:
        return await bare.fetch(_DRIVER_SQL, params["guild_id"], params["me"])

    layers = [
        ("ORM AsyncSession, autocommit", orm_session),
        ("guarded Core AsyncConnection, autocommit", core_connection),
        ("quizbot's hot path (quizbot.driver over the pool)", driver_path),
        ("asyncpg on a connection from the same pool", pooled_driver),
        ("asyncpg's own pool: acquire, statement, release (the raw replay)", replay_pool_driver),
        ("asyncpg, bare connection (the statement alone)", bare_driver),
    ]
    if len(await orm_session()) != 1:
        raise RuntimeError("the measured member is not in the seeded data")
    return [
        {"layer": name, "calls": calls, **await _per_call(call, calls)} for name, call in layers
    ]
