"""The embedded PostgreSQL used when no DATABASE_URL is set.

`pgserver` ships a real PostgreSQL server in a wheel. Its data lives in the
user's data directory and is reused across runs; the server stops when the last
process using it exits (pgserver counts the handles).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import platformdirs

from quizbot.config import Settings

log = logging.getLogger(__name__)

DATABASE_NAME = "quizbot"


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started."""


def data_directory(settings: Settings) -> Path:
    """Where the embedded server keeps its files (EMBEDDED_PG_DIR, else the user data dir)."""
    if settings.embedded_pg_dir:
        return Path(settings.embedded_pg_dir).expanduser()
    return platformdirs.user_data_path("quizbot") / "postgres"


def start_embedded_postgres(settings: Settings) -> str:
    """Start (or join) the embedded server and return an asyncpg URL to quizbot's database.

    Blocking: call it before the event loop starts or through `asyncio.to_thread`.

    Raises:
        EmbeddedPostgresError: pgserver is missing or the server failed to start.
    """
    try:
        from pgserver.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - pgserver is a runtime dependency
        raise EmbeddedPostgresError(
            "DATABASE_URL is not set and the embedded PostgreSQL (package pgserver) is "
            "not installed; set DATABASE_URL or run `make install`"
        ) from exc

    pgdata = data_directory(settings)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
        exists = server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"
        ).strip()
        if "1 row" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        uri: str = server.get_uri(DATABASE_NAME)
    except (OSError, subprocess.CalledProcessError, AssertionError) as exc:
        raise EmbeddedPostgresError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}"
        ) from exc
    log.info("embedded PostgreSQL: data in %s", pgdata)
    return "postgresql+asyncpg://" + uri.removeprefix("postgresql://")
