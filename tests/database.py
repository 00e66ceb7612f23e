"""Finding a PostgreSQL for the tests and making throwaway databases on it (DESIGN §6)."""

from __future__ import annotations

import os
import tempfile

from sqlalchemy.ext.asyncio import create_async_engine

from quizbot import db_admin
from quizbot.config import normalise_database_url
from quizbot.db_admin import drop_database, port_open
from quizbot.migrations import upgrade_on

__all__ = [
    "IN_CI",
    "LOCAL_SERVER",
    "create_database",
    "drop_database",
    "migrated_database",
    "server_url",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LOCAL_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """A URL of a database on the server the tests use (QUIZBOT_TEST_DATABASE_URL,
    else the local server, else the embedded one). With CI=true only a configured or
    local server will do: a missing PostgreSQL fails the run instead of being replaced."""
    configured = os.environ.get("QUIZBOT_TEST_DATABASE_URL")
    if configured:
        return normalise_database_url(configured)
    if port_open("127.0.0.1", 5432):
        return LOCAL_SERVER
    if IN_CI:
        raise RuntimeError(
            "CI=true but no PostgreSQL answers at 127.0.0.1:5432 and "
            "QUIZBOT_TEST_DATABASE_URL is not set"
        )
    from pgserver.postgres_server import get_server

    server = get_server(tempfile.mkdtemp(prefix="quizbot-test-pg-"), cleanup_mode="delete")
    return "postgresql+asyncpg://" + server.get_uri("postgres").removeprefix("postgresql://")


async def create_database(
    server: str, prefix: str = "quizbot_test", *, template: str | None = None
) -> str:
    """Create a database with a unique name, empty or a copy of `template`; returns its URL."""
    return await db_admin.create_database(server, prefix, template=template)


async def migrated_database() -> str:
    """A new database on the tests' server, migrated to head; the caller drops it."""
    url = await create_database(server_url())
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await upgrade_on(conn)
    finally:
        await engine.dispose()
    return url
