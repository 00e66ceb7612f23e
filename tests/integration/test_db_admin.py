"""Throwaway databases (`quizbot.db_admin`): a copy holds its template's rows, however
it is made."""

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
                "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 50)"
            )
        finally:
            await conn.close()
        name = db_admin.asyncpg_args(template)["database"]
        copy = await db_admin.create_database(
            server, "quizbot_admin_copy", template=name, file_copy=file_copy
        )
        conn = await asyncpg.connect(**db_admin.asyncpg_args(copy))
        try:
            assert await conn.fetchval("SELECT sum(n) FROM t") == 1275
        finally:
            await conn.close()
    finally:
        if copy is not None:
            await db_admin.drop_database(copy)
        await db_admin.drop_database(template)
