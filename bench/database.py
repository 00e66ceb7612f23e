"""Throwaway databases on the configured server: create, clone, drop.

The benchmark never touches the bot's own database: it creates `quizbot_bench_*`
databases, and clones the seeded one (CREATE DATABASE ... TEMPLATE) so that
every variant starts from the same data.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from quizbot.config import Settings, normalise_database_url
from quizbot.db import database_url

LOCAL_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def resolve_server(explicit: str | None = None) -> str:
    """Where to create databases: the argument, DATABASE_URL, 127.0.0.1:5432, else embedded.

    Blocking when it starts the embedded server.
    """
    if explicit:
        return normalise_database_url(explicit)
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return normalise_database_url(configured)
    if _port_open("127.0.0.1", 5432):
        return LOCAL_SERVER
    return database_url(Settings(database_url=None))


def asyncpg_args(url: str) -> dict[str, Any]:
    """asyncpg.connect keyword arguments for a SQLAlchemy URL."""
    parsed = make_url(url)
    return {
        "user": parsed.username,
        "password": parsed.password,
        "host": parsed.host or parsed.query.get("host"),
        "port": parsed.port,
        "database": parsed.database,
    }


def libpq_dsn(url: str) -> str:
    """A libpq DSN (psycopg2, pgbench) for a SQLAlchemy URL."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "127.0.0.1"
    parts = [f"host={host}", f"dbname={parsed.database}"]
    if parsed.port:
        parts.append(f"port={parsed.port}")
    if parsed.username:
        parts.append(f"user={parsed.username}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    return " ".join(parts)


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin(server: str) -> asyncpg.Connection:
    return await asyncpg.connect(**asyncpg_args(with_database(server, "postgres")))


async def create_database(server: str, label: str, template: str | None = None) -> str:
    """Create `quizbot_bench_<label>_<random>` (a copy of `template` if given); returns its URL."""
    name = f"quizbot_bench_{label}_{uuid.uuid4().hex[:8]}"
    conn = await _admin(server)
    try:
        suffix = f' TEMPLATE "{make_url(template).database}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await conn.close()
    return with_database(server, name)


async def drop_database(url: str) -> None:
    """Drop a database made here, disconnecting whoever is left."""
    conn = await _admin(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()
