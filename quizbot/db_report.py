"""`quizbot db-report`: the pool settings, the server's connections, and the top
statements from pg_stat_statements when the server has it (the plan's "set up
pg_stat_statements, monitor slow queries").

pg_stat_statements must be in `shared_preload_libraries` (a server restart) and
created in the database (`CREATE EXTENSION`); without it the report says so and
how to enable it. Its timing columns were renamed in PostgreSQL 13
(`total_time` → `total_exec_time`, `mean_time` → `mean_exec_time`); both are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from quizbot.config import Settings

ORDERS = {
    "total": "total_ms",
    "calls": "calls",
    "mean": "mean_ms",
}

ENABLE_HINT = (
    "To enable it: add pg_stat_statements to shared_preload_libraries in postgresql.conf "
    "(or ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'), restart "
    "PostgreSQL, then run CREATE EXTENSION pg_stat_statements; in this database."
)


@dataclass(frozen=True)
class StatementStat:
    """One normalised statement's totals."""

    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int


@dataclass(frozen=True)
class Connections:
    """Server connections of one application in one state."""

    application: str
    state: str
    count: int


@dataclass
class DbReport:
    """What `db-report` prints."""

    server_version: str
    max_connections: int
    pool: dict[str, Any]
    connections: list[Connections]
    statements_available: bool
    unavailable_reason: str | None = None
    top: dict[str, list[StatementStat]] = field(default_factory=dict)


def pool_settings(settings: Settings) -> dict[str, Any]:
    """The pool and statement-cache settings, as configured."""
    return {
        "pool size": settings.db_pool_size,
        "max overflow": settings.db_max_overflow,
        "pool timeout (s)": settings.db_pool_timeout,
        "recycle (s)": settings.db_pool_recycle,
        "hand-out order": "last returned first" if settings.db_pool_lifo else "in turn",
        "statement cache": 0 if settings.db_pgbouncer else settings.db_statement_cache_size,
        "pgbouncer mode": settings.db_pgbouncer,
        "application name": settings.db_application_name,
    }


def _statements_sql(version_num: int, order: str) -> str:
    total, mean = (
        ("total_exec_time", "mean_exec_time")
        if version_num >= 130000
        else ("total_time", "mean_time")
    )
    column = {"total": total, "calls": "calls", "mean": mean}[order]
    return (
        f"SELECT query, calls, {total} AS total_ms, {mean} AS mean_ms, rows "
        "FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        f"ORDER BY {column} DESC LIMIT :top"
    )


async def _unavailable_reason(conn: AsyncConnection, error: DBAPIError) -> str:
    # Through pg_settings, not current_setting(): an ordinary role (the usual one on
    # managed servers) may not read shared_preload_libraries, and pg_settings then
    # leaves the row out instead of raising.
    preload = (
        await conn.execute(
            text("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
        )
    ).scalar()
    created = (
        await conn.execute(
            text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
        )
    ).scalar()
    if preload is None:
        return (
            f"pg_stat_statements could not be read ({error.orig}); this role may not see "
            "shared_preload_libraries to tell why. " + ENABLE_HINT
        )
    if "pg_stat_statements" in preload and not created:
        return (
            "pg_stat_statements is loaded by the server but not created in this database: "
            "run CREATE EXTENSION pg_stat_statements;"
        )
    if "pg_stat_statements" not in preload:
        return "pg_stat_statements is not loaded by this server. " + ENABLE_HINT
    return f"pg_stat_statements could not be read ({error.orig}). " + ENABLE_HINT


async def collect(conn: AsyncConnection, settings: Settings, *, top: int = 10) -> DbReport:
    """Gather the report over one connection (read-only).

    Args:
        conn: a connection to the bot's database.
        settings: for the pool settings shown.
        top: statements per ordering.
    """
    version = str((await conn.execute(text("SHOW server_version"))).scalar())
    version_num = int(
        (await conn.execute(text("SELECT current_setting('server_version_num')"))).scalar() or 0
    )
    max_connections = int(
        (await conn.execute(text("SELECT current_setting('max_connections')"))).scalar() or 0
    )
    connections = [
        Connections(r.application or "(none)", r.state or "(background)", r.n)
        for r in await conn.execute(
            text(
                "SELECT application_name AS application, state, count(*) AS n "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
            )
        )
    ]
    report = DbReport(
        server_version=version,
        max_connections=max_connections,
        pool=pool_settings(settings),
        connections=connections,
        statements_available=True,
    )
    try:
        async with conn.begin_nested():  # a failed probe must not abort the transaction
            for order in ORDERS:
                rows = await conn.execute(text(_statements_sql(version_num, order)), {"top": top})
                report.top[order] = [
                    StatementStat(
                        " ".join(str(r.query).split()),
                        int(r.calls),
                        float(r.total_ms),
                        float(r.mean_ms),
                        int(r.rows),
                    )
                    for r in rows
                ]
    except DBAPIError as error:
        report.statements_available = False
        report.top = {}
        report.unavailable_reason = await _unavailable_reason(conn, error)
    return report


def render(report: DbReport, console: Any, *, width: int = 90) -> None:
    """Print the report with rich tables."""
    from rich.table import Table

    console.print(
        f"[bold]PostgreSQL {report.server_version}[/bold], max_connections {report.max_connections}"
    )
    pool = Table(title="pool settings", show_header=False)
    for key, value in report.pool.items():
        pool.add_row(key, str(value))
    console.print(pool)
    conns = Table(title="server connections to this database")
    for column in ("application", "state", "connections"):
        conns.add_column(column)
    for c in report.connections:
        conns.add_row(c.application, c.state, str(c.count))
    console.print(conns)
    if not report.statements_available:
        console.print(f"[yellow]{report.unavailable_reason}[/yellow]")
        return
    titles = {"total": "total time", "calls": "calls", "mean": "mean time"}
    for order, stats in report.top.items():
        table = Table(title=f"top statements by {titles[order]}")
        for column in ("calls", "total ms", "mean ms", "rows", "statement"):
            table.add_column(column, justify="left" if column == "statement" else "right")
        for s in stats:
            query = s.query if len(s.query) <= width else s.query[: width - 1] + "…"
            table.add_row(
                f"{s.calls:,}", f"{s.total_ms:,.1f}", f"{s.mean_ms:,.3f}", f"{s.rows:,}", query
            )
        console.print(table)
