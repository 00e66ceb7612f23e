"""Throwaway databases on a PostgreSQL server: find a local server, create (or clone),
drop. For tools around the bot (the test suite, the benchmark), not for the bot itself."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections there (within a second)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def asyncpg_args(url: str) -> dict[str, Any]:
    """`asyncpg.connect` keyword arguments for a SQLAlchemy URL (a socket as `?host=`)."""
    parsed = make_url(url)
    return {
        "user": parsed.username,
        "password": parsed.password,
        "host": parsed.host or parsed.query.get("host"),
        "port": parsed.port,
        "database": parsed.database,
    }


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def create_database(
    server: str, prefix: str, *, template: str | None = None, file_copy: bool = False
) -> str:
    """Create `<prefix>_<random>`, empty or a copy of database `template`; returns its URL.

    Args:
        server: a URL of any database on the server.
        prefix: the new name's start (say whose databases they are).
        template: the name of a database to copy (CREATE DATABASE ... TEMPLATE).
        file_copy: copy the template's files (`STRATEGY FILE_COPY`, PostgreSQL 15 and
            later; older servers only copy files) instead of writing every page of it
            to the WAL, PostgreSQL's default since 15. For large templates: the WAL of
            a copy brings the server's next checkpoint closer, and with it extra
            writes during whatever runs next. The copy costs two checkpoints instead.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(**asyncpg_args(with_database(server, "postgres")))
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        if template and file_copy and conn.get_server_version() >= (15,):
            copy += " STRATEGY FILE_COPY"
        await conn.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await conn.close()
    return with_database(server, name)


async def drop_database(url: str) -> None:
    """Drop a database made by `create_database`, disconnecting whoever is left."""
    conn = await asyncpg.connect(**asyncpg_args(with_database(url, "postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()
