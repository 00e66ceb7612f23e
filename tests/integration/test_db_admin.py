"""Throwaway databases (`quizbot.db_admin`): a copy holds its template's rows, however
it is made, and only a copy made file by file keeps the template out of the WAL."""

from __future__ import annotations

import asyncpg
import pytest

from quizbot import db_admin
from tests.database import server_url


@pytest.mark.parametrize("file_copy", [False, True])
async def test_a_copy_holds_the_templates_rows(file_copy: bool) -> None:
    server = server_url()
    template = await db_admin.create_database(server, "quizbot_admin_template")
    copy = None
    try:
        conn = await asyncpg.connect(**db_admin.asyncpg_args(template))
        try:
            await conn.execute(
                "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 200000)"
            )
            size: int = await conn.fetchval("SELECT pg_database_size(current_database())")
        finally:
            await conn.close()
        admin = await asyncpg.connect(**db_admin.asyncpg_args(server))
        try:
            before = await admin.fetchval("SELECT pg_current_wal_lsn()")
            copy = await db_admin.create_database(
                server,
                "quizbot_admin_copy",
                template=db_admin.asyncpg_args(template)["database"],
                file_copy=file_copy,
            )
            wal: int = await admin.fetchval(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", before
            )
            if admin.get_server_version() >= (15,):
                # WAL_LOG, the default since 15, writes every page of the copy to the WAL.
                assert (wal < size / 2) == file_copy, (wal, size)
        finally:
            await admin.close()
        conn = await asyncpg.connect(**db_admin.asyncpg_args(copy))
        try:
            assert await conn.fetchval("SELECT sum(n) FROM t") == 20_000_100_000
        finally:
            await conn.close()
    finally:
        if copy is not None:
            await db_admin.drop_database(copy)
        await db_admin.drop_database(template)
