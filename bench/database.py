"""Throwaway databases on the configured server: create, clone, drop.

The benchmark never touches the bot's own database: it creates `quizbot_bench_*`
databases, and clones the seeded one (CREATE DATABASE ... TEMPLATE) so that
every variant starts from the same data.
"""

from __future__ import annotations

import os

import asyncpg
from sqlalchemy.engine import make_url

from bench.metrics import ServerCpu, local_postmaster
from quizbot import db_admin
from quizbot.config import Settings, normalise_database_url
from quizbot.db import database_url
from quizbot.db_admin import asyncpg_args, port_open, with_database

__all__ = [
    "asyncpg_args",
    "create_database",
    "drop_database",
    "libpq_dsn",
    "local_server_cpu",
    "resolve_server",
    "with_database",
]

LOCAL_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def resolve_server(explicit: str | None = None) -> str:
    """Where to create databases: the argument, DATABASE_URL, 127.0.0.1:5432, else embedded.

    Blocking when it starts the embedded server.
    """
    if explicit:
        return normalise_database_url(explicit)
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return normalise_database_url(configured)
    if port_open("127.0.0.1", 5432):
        return LOCAL_SERVER
    return database_url(Settings(database_url=None))


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


async def create_database(server: str, label: str, template: str | None = None) -> str:
    """Create `quizbot_bench_<label>_<random>` (a copy of `template` if given); returns its URL.

    A copy is made file by file, at the cost of two checkpoints of a server idle
    between variants. WAL-logged (PostgreSQL 15's default), each copy of the standard
    seed put about 130 MB into the WAL and brought the server's next checkpoint
    closer, so that one often began during a variant's measured stages
    (`db_admin.create_database`).
    """
    return await db_admin.create_database(
        server,
        f"quizbot_bench_{label}",
        template=make_url(template).database if template else None,
        file_copy=True,
    )


async def drop_database(url: str) -> None:
    """Drop a database made here, disconnecting whoever is left."""
    await db_admin.drop_database(url)


async def local_server_cpu(url: str) -> ServerCpu | None:
    """A meter of the CPU used by the server holding `url`'s database, when that server
    runs on this machine; None otherwise (the reports then leave the server's CPU out)."""
    conn = await asyncpg.connect(**asyncpg_args(url))
    try:
        # Checked while the connection is open: its backend is alive to be found.
        row = await conn.fetchrow(
            "SELECT pg_backend_pid() AS pid, current_database() AS db, "
            "extract(epoch FROM pg_postmaster_start_time())::float8 AS started"
        )
        postmaster = local_postmaster(row["pid"], row["db"], row["started"])
    finally:
        await conn.close()
    return ServerCpu(postmaster) if postmaster is not None else None
