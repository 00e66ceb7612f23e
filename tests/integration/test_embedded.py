"""With no DATABASE_URL, quizbot runs on an embedded PostgreSQL it starts itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pgserver.postgres_server import PostgresServer
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from quizbot.config import Settings
from quizbot.embedded_pg import start_embedded_postgres
from quizbot.migrations import upgrade_on
from quizbot.models import Base


async def test_embedded_server_starts_is_reused_and_migrates(tmp_path: Path) -> None:
    settings = Settings(database_url=None, embedded_pg_dir=str(tmp_path / "pg"))
    url = await asyncio.to_thread(start_embedded_postgres, settings)
    try:
        assert url.startswith("postgresql+asyncpg://")
        # A second start joins the running server and finds the database.
        assert await asyncio.to_thread(start_embedded_postgres, settings) == url
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await upgrade_on(conn)
                tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        finally:
            await engine.dispose()
        assert set(Base.metadata.tables) <= set(tables)
        assert (tmp_path / "pg" / "PG_VERSION").exists()
    finally:
        server = PostgresServer._instances.get((tmp_path / "pg").resolve())
        if server is not None:
            server.cleanup()
