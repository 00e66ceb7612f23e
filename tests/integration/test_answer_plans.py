"""The answer writer's connections (answer batches and question messages) plan each
statement once (ANSWER_GENERIC_PLANS): those generic plans must be the lookups the
custom plans were, on data of some size.

PostgreSQL kept re-planning the writer's statements at almost every batch because
their generic plans guess ten rows per array and so look dearer than a custom plan
of a small batch (`quizbot.db.connect_args`). Forcing the generic plan is only sound
if it still finds each row by key: a sequential scan or a hash over a whole table
would cost every batch a pass over the members, the users or the answers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.dialects import postgresql

from bench.config import SCALES
from bench.dataset import seed
from quizbot.app import App
from quizbot.config import Settings
from quizbot.db import connect_args
from quizbot.db_admin import asyncpg_args
from quizbot.driver import ANSWER_POOL, compile_for_driver, statements_at_start
from quizbot.services import answer_batch
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


def _writer_statements() -> list[tuple[str, str]]:
    """(name, SQL as sent) of every statement run on the answer writer's connections:
    those primed on its pool (the answers' fast path, the awards, the messages'
    update), and the answers' locked path's two."""
    dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    statements = [*statements_at_start(ANSWER_POOL)]
    statements += [answer_batch._BATCH_CONTEXT, answer_batch._BATCH_RECORD]
    named = []
    for statement in statements:
        sql = compile_for_driver(statement, dialect).sql
        named.append((" ".join(sql.split())[:60], sql))
    return named


async def _generic_plan(conn: asyncpg.Connection, name: str, sql: str) -> str:
    """The plan the server keeps for `sql` under force_generic_plan (nothing is run)."""
    await conn.execute(f"PREPARE {name} AS {sql}")
    try:
        params = await conn.fetchval(
            "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = $1",
            name,
        )
        arguments = ", ".join(["NULL"] * params)
        rows = await conn.fetch(f"EXPLAIN (VERBOSE) EXECUTE {name}({arguments})")
    finally:
        await conn.execute(f"DEALLOCATE {name}")
    return "\n".join(row[0] for row in rows)


async def test_the_writers_generic_plans_look_rows_up_by_key(sized_database: str) -> None:
    settings = Settings(database_url=sized_database)
    args = connect_args(settings, generic_plans=True)
    conn = await asyncpg.connect(
        **asyncpg_args(sized_database), server_settings=args["server_settings"]
    )
    try:
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        statements = _writer_statements()
        assert len(statements) == 6
        for index, (label, sql) in enumerate(statements):
            plan = await _generic_plan(conn, f"writer_{index}", sql)
            # A generic plan keeps the parameters ($n) where a custom one has values.
            assert re.search(r"\$\d", plan), (label, plan)
            scanned = set(re.findall(r"Seq Scan on (\w+)", plan))
            assert not scanned & set(KEYED_TABLES), (label, plan)
            # Every keyed table the statement reads is reached through an index.
            for table in KEYED_TABLES:
                if re.search(rf"\b{table}\b", sql) and f" on {table}" in plan:
                    by_index = rf"(Index (Only )?Scan using \w+|Bitmap Heap Scan) on {table}\b"
                    assert re.search(by_index, plan) or f"Insert on {table}" in plan, (
                        label,
                        table,
                        plan,
                    )
    finally:
        await conn.close()


async def test_only_the_writers_pool_forces_generic_plans(database_url: str) -> None:
    app = App.create(Settings(), database_url)
    off = App.create(Settings(answer_generic_plans=False), database_url)
    try:
        assert app.answer_engine is not None and off.answer_engine is not None

        async def mode(engine: object) -> str:
            async with engine.connect() as conn:  # type: ignore[attr-defined]
                raw = await conn.get_raw_connection()
                return str(await raw.driver_connection.fetchval("SHOW plan_cache_mode"))

        assert await mode(app.answer_engine) == "force_generic_plan"
        assert await mode(app.engine) == "auto"
        assert await mode(off.answer_engine) == "auto"
    finally:
        await app.close()
        await off.close()


def test_connect_args_ask_for_generic_plans_only_when_told() -> None:
    settings = Settings()
    assert "plan_cache_mode" not in connect_args(settings)["server_settings"]
    forced = connect_args(settings, generic_plans=True)["server_settings"]
    assert forced["plan_cache_mode"] == "force_generic_plan"
    assert forced["jit"] == "off"
