"""Where quizbot forces the server's generic plans, those plans must be the lookups
the custom plans were, on data of some size: on the answer writer's connections
(answer batches and question messages, ANSWER_GENERIC_PLANS), and in a quiz's end
(FINISH_GENERIC_PLANS).

PostgreSQL kept re-planning those statements at almost every run because they take
their rows as arrays: a generic plan guesses ten rows per array and so looks dearer
than a custom plan of a short array (`quizbot.db.connect_args`). Forcing the generic
plan is only sound if it still finds each row by key: a sequential scan or a hash over
a whole table would cost every batch, or every quiz's end, a pass over the members,
the users or the answers.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable

from bench.config import SCALES
from bench.dataset import seed
from quizbot.app import App
from quizbot.config import Settings
from quizbot.db import connect_args
from quizbot.db_admin import asyncpg_args
from quizbot.driver import ANSWER_POOL, compile_for_driver, statements_at_start
from quizbot.services import answer_batch
from quizbot.services.quiz import FINISH_STATEMENTS
from tests.database import drop_database, migrated_database

# Enough rows that a scan of a whole table costs far more than the batch's lookups,
# as on any bot past its first days (the benchmark's smoke dataset, 25 times the members).
SIZED = dataclasses.replace(
    SCALES["smoke"], guilds=5, members=5_000, questions=500, past_answers=30_000
)
# The tables a batch looks rows up in by key: never scanned whole.
KEYED_TABLES = (
    "guild_members",
    "users",
    "answers",
    "quiz_sessions",
    "member_daily_points",
    "member_period_points",
    "user_achievements",
    "review_cards",
)


@pytest.fixture(scope="module")
async def sized_database() -> AsyncIterator[str]:
    """A migrated database of `SIZED`'s dataset, vacuumed and analysed."""
    url = await migrated_database()
    try:
        await seed(asyncpg_args(url), SIZED)
        yield url
    finally:
        await drop_database(url)


def _named(statements: Iterable[Executable]) -> list[tuple[str, str]]:
    """(name, SQL as sent) of each statement."""
    dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    named = []
    for statement in statements:
        sql = compile_for_driver(statement, dialect).sql
        named.append((" ".join(sql.split())[:60], sql))
    return named


# Every statement run on the answer writer's connections: those primed on its pool (the
# answers' fast path, the awards, the messages' update), and the answers' locked path's two.
WRITER_STATEMENTS = (*statements_at_start(ANSWER_POOL), *answer_batch.LOCKED_PATH_STATEMENTS)


async def _generic_plan(conn: asyncpg.Connection, name: str, sql: str) -> dict[str, Any]:
    """The plan the server keeps for `sql` under force_generic_plan (nothing is run),
    as EXPLAIN's JSON."""
    await conn.execute(f"PREPARE {name} AS {sql}")
    try:
        params = await conn.fetchval(
            "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = $1",
            name,
        )
        arguments = ", ".join(["NULL"] * params)
        explained = await conn.fetchval(
            f"EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {name}({arguments})"
        )
    finally:
        await conn.execute(f"DEALLOCATE {name}")
    plan: dict[str, Any] = json.loads(explained)[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a plan, the plan's own first."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


# How a node reaches a table's rows, by EXPLAIN's node type.
_BY_INDEX = frozenset({"Index Scan", "Index Only Scan", "Bitmap Heap Scan"})


async def _tables_read_by_key(url: str, statements: Iterable[Executable]) -> set[str]:
    """Check that the generic plan of each statement reaches the keyed tables only by
    index; return the keyed tables they read."""
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    args = connect_args(settings, generic_plans=True)
    conn = await asyncpg.connect(**asyncpg_args(url), server_settings=args["server_settings"])
    try:
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        read: set[str] = set()
        for index, (label, sql) in enumerate(_named(statements)):
            plan = await _generic_plan(conn, f"checked_{index}", sql)
            # A generic plan keeps the parameters ($n) where a custom one has values.
            assert re.search(r"\$\d", json.dumps(plan)), label
            for node in _nodes(plan):
                table = node.get("Relation Name")
                if table not in KEYED_TABLES or node["Node Type"] == "ModifyTable":
                    continue  # the target of an INSERT or UPDATE, found by the rows below
                read.add(table)
                assert node["Node Type"] in _BY_INDEX, (label, table, node["Node Type"])
        return read
    finally:
        await conn.close()


async def test_the_writers_generic_plans_look_rows_up_by_key(sized_database: str) -> None:
    assert len(WRITER_STATEMENTS) == 6
    read = await _tables_read_by_key(sized_database, WRITER_STATEMENTS)
    # The check saw the tables the batches look rows up in.
    assert {"guild_members", "users", "answers", "quiz_sessions"} <= read, read


async def test_a_quiz_ends_generic_plans_look_rows_up_by_key(sized_database: str) -> None:
    """`QuizService.finish`'s statements (`FINISH_STATEMENTS`; that the list is whole is
    checked where a finish's statements are counted, `test_round_trips.py`)."""
    assert len(FINISH_STATEMENTS) == 5
    read = await _tables_read_by_key(sized_database, FINISH_STATEMENTS)
    assert {"guild_members", "answers", "quiz_sessions", "member_daily_points"} <= read, read


async def test_only_the_writers_pool_forces_generic_plans(database_url: str) -> None:
    """On every connection: the main pool's are left to the server (`auto`), whose
    statements include some whose best plan depends on their values (a board's page
    after a cursor: its custom plan seeks to the cursor in the index)."""
    app = App.create(_settings(), database_url)
    off = App.create(_settings(answer_generic_plans=False), database_url)
    uncached = App.create(_settings(db_statement_cache_size=0), database_url)
    try:
        assert app.answer_engine is not None and off.answer_engine is not None

        async def mode(engine: AsyncEngine) -> str:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                return str(await raw.driver_connection.fetchval("SHOW plan_cache_mode"))

        assert await mode(app.answer_engine) == "force_generic_plan"
        assert await mode(app.engine) == "auto"
        assert await mode(off.answer_engine) == "auto"
        # Statements prepared anew at every run are planned at every run anyway.
        assert uncached.answer_engine is not None
        assert await mode(uncached.answer_engine) == "auto"
    finally:
        await app.close()
        await off.close()
        await uncached.close()


def _settings(**overrides: Any) -> Settings:
    """Settings from these arguments alone (no .env, no environment's REDIS_URL)."""
    return Settings(_env_file=None, redis_url=None, **overrides)  # type: ignore[call-arg]


def test_connect_args_ask_for_generic_plans_only_when_told() -> None:
    settings = _settings()
    assert "plan_cache_mode" not in connect_args(settings)["server_settings"]
    forced = connect_args(settings, generic_plans=True)["server_settings"]
    assert forced["plan_cache_mode"] == "force_generic_plan"
    assert forced["jit"] == "off"
