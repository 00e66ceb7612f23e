"""`quizbot db-report`: pg_stat_statements when present, a plain message when not."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from quizbot import cli
from quizbot.config import Settings, get_settings, normalise_database_url
from quizbot.db_report import collect
from tests.database import IN_CI
from tests.pg_cluster import private_cluster, system_bin_dir


async def test_without_the_extension_the_report_says_how_to_enable_it(
    connection: AsyncConnection,
) -> None:
    preload = (await connection.execute(text("SHOW shared_preload_libraries"))).scalar()
    if "pg_stat_statements" in str(preload):
        pytest.skip("this server preloads pg_stat_statements")
    report = await collect(connection, Settings())
    assert not report.statements_available and report.top == {}
    assert report.unavailable_reason is not None
    assert "shared_preload_libraries" in report.unavailable_reason
    assert "restart" in report.unavailable_reason
    assert "CREATE EXTENSION pg_stat_statements" in report.unavailable_reason
    # The failed probe did not abort the caller's transaction.
    assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    assert report.connections and report.max_connections > 0
    assert report.pool["pool size"] == Settings().db_pool_size
    assert report.pool["hand-out order"] == "last returned first"  # DB_POOL_LIFO's default

    # Created but not preloaded: the view exists, reading it fails; same advice.
    await connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
    report = await collect(connection, Settings())
    assert not report.statements_available
    assert "not loaded by this server" in str(report.unavailable_reason)


async def test_a_user_who_may_not_read_the_server_settings_still_gets_the_advice(
    connection: AsyncConnection,
) -> None:
    # Managed servers give the bot an ordinary role: shared_preload_libraries is then
    # hidden (superuser or pg_read_all_settings only). Role and SET are rolled back.
    role = f"quizbot_report_{uuid.uuid4().hex[:8]}"
    await connection.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
    await connection.execute(text(f'SET LOCAL ROLE "{role}"'))
    with pytest.raises(DBAPIError, match="pg_read_all_settings"):
        async with connection.begin_nested():
            await connection.execute(text("SELECT current_setting('shared_preload_libraries')"))
    report = await collect(connection, Settings())
    assert not report.statements_available and report.top == {}
    assert "CREATE EXTENSION pg_stat_statements" in str(report.unavailable_reason)
    assert "shared_preload_libraries" in str(report.unavailable_reason)
    assert (await connection.execute(text("SELECT 1"))).scalar() == 1


async def test_top_statements_by_total_calls_and_mean(connection: AsyncConnection) -> None:
    # A stand-in with the PostgreSQL 13+ columns: a temporary table is found before
    # the extension's view, so the report's own queries run unchanged.
    await connection.execute(
        text(
            "CREATE TEMP TABLE pg_stat_statements (dbid oid, query text, calls bigint, "
            "total_exec_time float8, mean_exec_time float8, rows bigint) ON COMMIT DROP"
        )
    )
    await connection.execute(
        text(
            "INSERT INTO pg_stat_statements "
            "SELECT d.oid, q, c, t, t / c, c FROM pg_database d, (VALUES "
            "('SELECT   a\n FROM answers', 1000, 50.0), ('INSERT INTO answers', 10, 80.0), "
            "('SELECT slow()', 1, 70.0)) v(q, c, t) WHERE d.datname = current_database() "
            "UNION ALL SELECT 0, 'other database', 99999, 99999, 1, 1"
        )
    )
    report = await collect(connection, Settings(), top=2)
    assert report.statements_available and report.unavailable_reason is None
    assert [s.query for s in report.top["total"]] == ["INSERT INTO answers", "SELECT slow()"]
    assert [s.query for s in report.top["calls"]] == [
        "SELECT a FROM answers",
        "INSERT INTO answers",
    ]
    assert [s.query for s in report.top["mean"]] == ["SELECT slow()", "INSERT INTO answers"]
    assert report.top["mean"][0].mean_ms == 70.0


def test_the_command_prints_the_report(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert cli.main(["db-report", "--top", "3"]) == 0
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "pool settings" in err and "server connections" in err
    assert "pg_stat_statements" in err


@pytest.fixture(scope="module")
def pgss_url() -> Iterator[str]:
    """A server that preloads pg_stat_statements: QUIZBOT_TEST_PGSS_URL, else a private
    cluster of the system's PostgreSQL (CI has one; without it the test is skipped,
    and with CI=true it fails)."""
    configured = os.environ.get("QUIZBOT_TEST_PGSS_URL")
    if configured:
        yield normalise_database_url(configured)
        return
    bin_dir = system_bin_dir("pg_stat_statements")
    if bin_dir is None:
        if IN_CI:
            raise RuntimeError("CI=true but no system PostgreSQL with pg_stat_statements")
        pytest.skip("no system PostgreSQL with pg_stat_statements to start a private server")
    with private_cluster(bin_dir, "shared_preload_libraries=pg_stat_statements") as url:
        yield url


async def test_against_a_server_that_preloads_pg_stat_statements(pgss_url: str) -> None:
    """The report's top statements from a real pg_stat_statements."""
    url = pgss_url
    engine = create_async_engine(normalise_database_url(url))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            await conn.commit()
            for _ in range(3):
                await conn.execute(text("SELECT count(*) FROM pg_class"))
            report = await collect(conn, Settings(), top=50)
    finally:
        await engine.dispose()
    assert report.statements_available, report.unavailable_reason
    calls = {s.query: s.calls for s in report.top["calls"]}
    assert calls.get("SELECT count(*) FROM pg_class", 0) >= 3
    assert all(s.mean_ms <= s.total_ms for s in report.top["total"])
