"""The benchmark's meter of the local server's CPU (`bench.metrics.ServerCpu`): it
finds the postmaster from a connection, counts what a backend burns, and keeps
counting a backend's CPU after the backend has exited."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import psutil
import pytest

from bench.database import local_server_cpu
from bench.metrics import ServerCpu, local_postmaster
from quizbot import db_admin
from tests.database import create_database, drop_database, server_url

# About a second of one core on the development VMs.
BURN = "SELECT count(*) FROM generate_series(1, 8000000)"


@pytest.fixture
async def meter() -> ServerCpu:
    if os.environ.get("QUIZBOT_TEST_DATABASE_URL"):
        pytest.skip("the configured test server may run on another machine")
    found = await local_server_cpu(server_url())
    assert found is not None, "the tests' server runs on this machine"
    return found


async def test_a_query_s_cpu_is_counted(meter: ServerCpu) -> None:
    conn = await asyncpg.connect(**db_admin.asyncpg_args(server_url()))
    try:
        backend = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()"))
        own_before, before = sum(backend.cpu_times()[:2]), meter.seconds()
        await conn.fetchval(BURN)
        own_after, after = sum(backend.cpu_times()[:2]), meter.seconds()
    finally:
        await conn.close()
    assert before is not None and after is not None
    burnt = own_after - own_before
    assert burnt > 0.2  # the query ran on the backend's core
    # The meter holds the backend's CPU, and whatever else the server did meanwhile.
    assert after - before >= burnt - 0.02


async def test_an_exited_backend_stays_counted(meter: ServerCpu) -> None:
    conn = await asyncpg.connect(**db_admin.asyncpg_args(server_url()))
    backend = await conn.fetchval("SELECT pg_backend_pid()")
    start = meter.seconds()
    await conn.fetchval(BURN)
    alive = meter.seconds()
    await conn.close()
    for _ in range(100):  # the postmaster reaps it within milliseconds
        if not psutil.pid_exists(backend):
            break
        await asyncio.sleep(0.02)
    assert not psutil.pid_exists(backend)
    gone = meter.seconds()
    assert start is not None and alive is not None and gone is not None
    assert alive - start > 0.2
    # Its CPU moved into the postmaster's children's totals: nothing was lost.
    assert gone >= alive - 0.01


async def test_only_a_backend_of_the_named_database_leads_to_its_postmaster() -> None:
    if os.environ.get("QUIZBOT_TEST_DATABASE_URL"):
        pytest.skip("the configured test server may run on another machine")
    # A database of its own: every PostgreSQL process's command line says "postgres".
    url = await create_database(server_url(), "quizbot_server_cpu")
    try:
        conn = await asyncpg.connect(**db_admin.asyncpg_args(url))
        try:
            backend, database, started = await conn.fetchrow(
                "SELECT pg_backend_pid(), current_database(), "
                "extract(epoch FROM pg_postmaster_start_time())::float8"
            )
            postmaster = local_postmaster(backend, database, started)
            assert postmaster is not None and psutil.Process(backend).ppid() == postmaster
            assert local_postmaster(backend, "quizbot_no_such_database", started) is None
            # A server that started at another time is another server.
            assert local_postmaster(backend, database, started - 3600) is None
        finally:
            await conn.close()
    finally:
        await drop_database(url)
    # This process is no backend at all.
    assert local_postmaster(os.getpid(), database, started) is None
