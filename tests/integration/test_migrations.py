"""The migrations match the models and can be undone on a populated database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from quizbot.migrations import downgrade_on, upgrade_on
from quizbot.models import Base
from tests.database import create_database, drop_database, server_url


async def test_models_and_migrations_agree(connection: AsyncConnection) -> None:
    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(
            sync_conn,  # type: ignore[arg-type]
            opts={"compare_type": True, "compare_server_default": True},
        )
        return list(compare_metadata(context, Base.metadata))

    assert await connection.run_sync(diff) == []


async def test_downgrade_base_then_upgrade_head_on_a_populated_database() -> None:
    url = await create_database(server_url(), prefix="quizbot_migrations")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await upgrade_on(conn)
            for statement in (
                "INSERT INTO guilds (guild_id, name) VALUES (1, 'g')",
                "INSERT INTO users (user_id, name) VALUES (2, 'u')",
                "INSERT INTO guild_members (guild_id, user_id, display_name) VALUES (1, 2, 'u')",
            ):
                await conn.execute(text(statement))
        async with engine.begin() as conn:
            await downgrade_on(conn, "base")
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert tables == ["alembic_version"]
        async with engine.begin() as conn:
            await upgrade_on(conn)
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert set(Base.metadata.tables) <= set(tables)
    finally:
        await engine.dispose()
        await drop_database(url)
