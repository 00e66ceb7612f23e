"""Running Alembic from code: `quizbot migrate`, first start, and the test harness."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from alembic import command

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config(url: str | None = None) -> Config:
    """The project's Alembic config; `url` overrides the settings-derived database URL."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    # An embedding caller keeps its own logging configuration.
    config.attributes["configure_logger"] = False
    if url:
        # ConfigParser treats % as interpolation.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` (blocking: runs its own event loop)."""
    command.upgrade(alembic_config(url), revision)


def _run_on(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


async def upgrade_on(connection: AsyncConnection, revision: str = "head") -> None:
    """Upgrade through an existing connection (Alembic's connection-sharing recipe)."""
    await connection.run_sync(_run_on, "upgrade", revision)


async def downgrade_on(connection: AsyncConnection, revision: str = "base") -> None:
    """Downgrade through an existing connection."""
    await connection.run_sync(_run_on, "downgrade", revision)
