"""Finding a PostgreSQL for the tests and making throwaway databases on it (DESIGN §6)."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from quizbot.config import normalise_database_url

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LOCAL_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def server_url() -> str:
    """A URL of a database on the server the tests use (QUIZBOT_TEST_DATABASE_URL,
    else the local server, else the embedded one). With CI=true only a configured or
    local server will do: a missing PostgreSQL fails the run instead of being replaced."""
    configured = os.environ.get("QUIZBOT_TEST_DATABASE_URL")
    if configured:
        return normalise_database_url(configured)
    if _port_open("127.0.0.1", 5432):
        return LOCAL_SERVER
    if IN_CI:
        raise RuntimeError(
            "CI=true but no PostgreSQL answers at 127.0.0.1:5432 and "
            "QUIZBOT_TEST_DATABASE_URL is not set"
        )
    from pgserver.postgres_server import get_server

    server = get_server(tempfile.mkdtemp(prefix="quizbot-test-pg-"), cleanup_mode="delete")
    return "postgresql+asyncpg://" + server.get_uri("postgres").removeprefix("postgresql://")


def _asyncpg_dsn(url: str) -> dict[str, object]:
    parsed = make_url(url)
    return {
        "user": parsed.username,
        "password": parsed.password,
        "host": parsed.host or parsed.query.get("host"),
        "port": parsed.port,
        "database": parsed.database,
    }


async def create_database(
    server: str, prefix: str = "quizbot_test", *, template: str | None = None
) -> str:
    """Create a database with a unique name, empty or a copy of `template`; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(**_asyncpg_dsn(server))  # type: ignore[arg-type]
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await conn.close()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    """Drop a database made by `create_database`, disconnecting whoever is left."""
    parsed = make_url(url)
    maintenance = parsed.set(database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(**_asyncpg_dsn(maintenance))  # type: ignore[arg-type]
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()
