"""`guilds.ranked_members`, the size of a guild's board that /stats shows, and
`guild_points_histogram`, its members per number of points that ranks are summed from,
are kept by triggers on guild_members through every kind of write, and filled by their
migrations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from quizbot.migrations import downgrade_on, upgrade_on
from quizbot.models.guild import HISTOGRAM_RANK_SQL
from tests.database import create_database, drop_database, server_url

BEFORE = "60e57fa0104d"  # the revision before the kept count
TRIGGERS = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'guild_members_ranked_%'"
BEFORE_HISTOGRAM = "d2b7c41e9a05"  # the revision before the kept histogram
HISTOGRAM_TRIGGERS = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'guild_members_histogram_%'"


@asynccontextmanager
async def _own_database(prefix: str) -> AsyncIterator[AsyncEngine]:
    """A database of the test's own: concurrent transactions and migrations cannot run
    inside the shared fixture's one transaction."""
    url = await create_database(server_url(), prefix=prefix)
    engine = create_async_engine(url, pool_size=8)
    try:
        yield engine
    finally:
        await engine.dispose()
        await drop_database(url)


async def _upgrade_over_members(conn: AsyncConnection, before: str, members: str) -> None:
    """Migrate to `before`, add guilds 1 and 2, users 1 to 4 and the members `members`
    lists as (guild, user, points), then migrate to head."""
    await upgrade_on(conn, before)
    for statement in (
        "INSERT INTO guilds (guild_id, name) VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO users (user_id, name) SELECT u, 'u' FROM generate_series(1, 4) u",
        "INSERT INTO guild_members (guild_id, user_id, display_name, points) "
        f"SELECT g, u, 'x', p FROM (VALUES {members}) AS m(g, u, p)",
    ):
        await conn.execute(text(statement))
    await upgrade_on(conn)


async def _kept_and_counted(conn: AsyncConnection) -> list[tuple[int, int, int]]:
    rows = await conn.execute(
        text(
            "SELECT g.guild_id, g.ranked_members, "
            "(SELECT count(*) FROM guild_members m WHERE m.guild_id = g.guild_id "
            "AND m.points > 0) FROM guilds g ORDER BY g.guild_id"
        )
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def _histograms(conn: AsyncConnection) -> tuple[list[Any], list[Any]]:
    """The kept histograms' rows, and the members grouped by points."""
    kept = await conn.execute(
        text("SELECT guild_id, points, members FROM guild_points_histogram ORDER BY 1, 2")
    )
    grouped = await conn.execute(
        text(
            "SELECT guild_id, points, count(*) FROM guild_members WHERE points > 0 "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        )
    )
    return [tuple(r) for r in kept], [tuple(r) for r in grouped]


async def _run(conn: AsyncConnection, *statements: str) -> list[tuple[int, int]]:
    """Run `statements`, check every guild's kept count against a count and the kept
    histograms against the members, and return (guild, kept count) per guild."""
    for statement in statements:
        await conn.execute(text(statement))
    rows = await _kept_and_counted(conn)
    assert all(kept == counted for _, kept, counted in rows), rows
    kept_histograms, grouped = await _histograms(conn)
    assert kept_histograms == grouped
    return [(guild, kept) for guild, kept, _ in rows]


async def test_every_kind_of_write_keeps_the_count(connection: AsyncConnection) -> None:
    assert await _run(
        connection,
        "INSERT INTO guilds (guild_id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        "INSERT INTO users (user_id, name) SELECT u, 'u' || u FROM generate_series(10, 16) u",
        # New members, with and without points, in two guilds at once.
        "INSERT INTO guild_members (guild_id, user_id, display_name, points) VALUES "
        "(1, 10, 'x', 5), (1, 11, 'x', 0), (1, 12, 'x', 7), (2, 10, 'x', 3), (2, 13, 'x', 0)",
    ) == [(1, 2), (2, 1), (3, 0)]
    assert await _run(
        connection,
        # One statement: a member gains their first points, another loses theirs, a
        # third only gains more, and a fourth goes below zero (not on the board).
        "UPDATE guild_members SET points = CASE user_id WHEN 11 THEN 4 WHEN 10 THEN 0 "
        "WHEN 12 THEN 9 ELSE points END WHERE guild_id = 1",
        "UPDATE guild_members SET points = -3 WHERE guild_id = 2 AND user_id = 10",
    ) == [(1, 2), (2, 0), (3, 0)]
    assert await _run(
        connection,
        # The writers' upsert: a new member with points, an old one reaching theirs.
        "INSERT INTO guild_members AS t (guild_id, user_id, display_name, points) VALUES "
        "(3, 14, 'x', 2), (2, 13, 'x', 6) ON CONFLICT (guild_id, user_id) "
        "DO UPDATE SET points = t.points + excluded.points",
        "UPDATE guild_members SET xp = xp + 1",  # a write that moves nobody's points
    ) == [(1, 2), (2, 1), (3, 1)]
    assert await _run(
        connection,
        # A member moved to another guild with their points (a repair script), and back.
        "UPDATE guild_members SET guild_id = 3 WHERE guild_id = 2 AND user_id = 13",
    ) == [(1, 2), (2, 0), (3, 2)]
    assert await _run(
        connection,
        "UPDATE guild_members SET guild_id = 2 WHERE guild_id = 3 AND user_id = 13",
    ) == [(1, 2), (2, 1), (3, 1)]
    assert await _run(
        connection,
        "UPDATE guild_members SET points = 0 WHERE guild_id = 1 AND points <> 0",  # a reset
        "DELETE FROM guild_members WHERE guild_id = 3 AND user_id = 14",  # a member leaves
    ) == [(1, 0), (2, 1), (3, 0)]
    assert await _run(
        connection,
        "UPDATE guild_members SET points = 1 WHERE guild_id = 1",
        "DELETE FROM users WHERE user_id = 11",  # a user forgotten: their members go too
        "DELETE FROM guilds WHERE guild_id = 2",  # a guild removed: its members go too
    ) == [(1, 2), (3, 0)]
    # Emptied at once (a restore script, a test): every count goes back to zero.
    assert await _run(connection, "TRUNCATE guild_members CASCADE") == [(1, 0), (3, 0)]


async def test_concurrent_first_points_in_one_guild_lose_no_count() -> None:
    async with _own_database("quizbot_ranked") as engine:
        async with engine.begin() as conn:
            await upgrade_on(conn)
            await conn.execute(text("INSERT INTO guilds (guild_id, name) VALUES (1, 'g')"))
            await conn.execute(
                text("INSERT INTO users (user_id, name) SELECT u, 'u' FROM generate_series(1, 8) u")
            )
            await conn.execute(
                text(
                    "INSERT INTO guild_members (guild_id, user_id, display_name) "
                    "SELECT 1, u, 'u' FROM generate_series(1, 8) u"
                )
            )

        async def first_points(user_id: int) -> None:
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE guild_members SET points = 5 WHERE guild_id = 1 AND user_id = :u"),
                    {"u": user_id},
                )
                # Held a while: the others queue on the guild's row meanwhile, and
                # each must still add its member when its turn comes.
                await conn.execute(text("SELECT pg_sleep(0.02)"))

        await asyncio.gather(*(first_points(u) for u in range(1, 9)))
        async with engine.connect() as conn:
            assert await _run(conn) == [(1, 8)]


async def test_the_migration_counts_existing_members_and_is_undone_whole() -> None:
    async with _own_database("quizbot_migrations") as engine, engine.begin() as conn:
        await _upgrade_over_members(conn, BEFORE, "(1, 1, 5), (1, 2, 0), (1, 3, 1), (2, 4, -2)")
        assert await _run(conn) == [(1, 2), (2, 0)]
        assert (await conn.execute(text(TRIGGERS))).scalar_one() == 4
        await downgrade_on(conn, BEFORE)
        assert (await conn.execute(text(TRIGGERS))).scalar_one() == 0
        functions = "SELECT count(*) FROM pg_proc WHERE proname = 'guild_ranked_members_moved'"
        assert (await conn.execute(text(functions))).scalar_one() == 0
        columns = (
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'guilds' AND column_name = 'ranked_members'"
        )
        assert (await conn.execute(text(columns))).scalar_one() == 0


async def test_the_histogram_ranks_as_a_count_would(connection: AsyncConnection) -> None:
    await _run(
        connection,
        "INSERT INTO guilds (guild_id, name) VALUES (1, 'a')",
        "INSERT INTO users (user_id, name) SELECT u, 'u' FROM generate_series(1, 40) u",
        # Ties and gaps: points 0 to 9, four members each.
        "INSERT INTO guild_members (guild_id, user_id, display_name, points) "
        "SELECT 1, u, 'x', u % 10 FROM generate_series(1, 40) u",
        "UPDATE guild_members SET points = points * 3 WHERE user_id % 3 = 0",
    )
    rows = await connection.execute(
        text(
            "SELECT m.points, "
            + HISTOGRAM_RANK_SQL.format(guild_id="1", points="m.points")
            + ", (SELECT count(*) + 1 FROM guild_members o WHERE o.guild_id = 1 "
            "AND o.points > m.points) FROM guild_members m WHERE m.guild_id = 1"
        )
    )
    ranks = [(summed, counted) for _points, summed, counted in rows]
    assert len(ranks) == 40 and all(summed == counted for summed, counted in ranks), ranks


async def test_a_histogram_out_of_step_never_fails_a_write(connection: AsyncConnection) -> None:
    await _run(
        connection,
        "INSERT INTO guilds (guild_id, name) VALUES (1, 'a')",
        "INSERT INTO users (user_id, name) VALUES (1, 'u'), (2, 'v')",
        "INSERT INTO guild_members (guild_id, user_id, display_name, points) "
        "VALUES (1, 1, 'x', 5), (1, 2, 'x', 5)",
    )
    # A write that skipped the triggers (a bulk load in replica mode, a repair) left
    # the histogram without the members' row: their moves still succeed.
    await connection.execute(text("DELETE FROM guild_points_histogram"))
    await connection.execute(text("UPDATE guild_members SET points = 8 WHERE user_id = 1"))
    await connection.execute(text("DELETE FROM guild_members WHERE user_id = 2"))
    kept, _grouped = await _histograms(connection)
    assert kept == [(1, 8, 1)]  # what was added is kept; nothing below zero stays


async def test_concurrent_moves_across_the_same_points_lose_nothing() -> None:
    """Statements moving members across the same totals queue on the histogram's rows
    and lose no move. (They also finished without a deadlock, but that does not prove
    the trigger's key order: with or without its ORDER BY this test passes, as the
    grouping hands the rows over in key order anyway.)"""
    async with _own_database("quizbot_ranked") as engine:
        async with engine.begin() as conn:
            await upgrade_on(conn)
            await conn.execute(text("INSERT INTO guilds (guild_id, name) VALUES (1, 'g')"))
            await conn.execute(
                text(
                    "INSERT INTO users (user_id, name) SELECT u, 'u' FROM generate_series(1, 64) u"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO guild_members (guild_id, user_id, display_name, points) "
                    "SELECT 1, u, 'u', 4 + ((u - 1) / 8) % 4 FROM generate_series(1, 64) u"
                )
            )

        async def move(first: int, up: bool) -> None:
            # Eight members per statement, two on each of four totals; half the
            # statements move up and half down, so each pair's rows of the histogram
            # overlap in part and each statement must take them in key order.
            users = list(range(first, 65, 8))
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE guild_members SET points = points + :by "
                        "WHERE guild_id = 1 AND user_id = ANY(:users)"
                    ),
                    {"by": 1 if up else -1, "users": users},
                )
                # Held a while: the others queue on the histogram's rows meanwhile.
                await conn.execute(text("SELECT pg_sleep(0.02)"))

        # Three rounds down from 4..7 leave everyone above zero, so all 64 stay counted.
        for _round in range(3):
            await asyncio.gather(*(move(first, first % 2 == 0) for first in range(1, 9)))
        async with engine.connect() as conn:
            kept, grouped = await _histograms(conn)
            assert kept == grouped and sum(n for _g, _p, n in kept) == 64


async def test_the_histogram_migration_fills_it_and_is_undone_whole() -> None:
    async with _own_database("quizbot_migrations") as engine, engine.begin() as conn:
        await _upgrade_over_members(
            conn, BEFORE_HISTOGRAM, "(1, 1, 5), (1, 2, 5), (1, 3, 0), (2, 4, 9)"
        )
        kept, _grouped = await _histograms(conn)
        assert kept == [(1, 5, 2), (2, 9, 1)]
        assert (await conn.execute(text(HISTOGRAM_TRIGGERS))).scalar_one() == 4
        await _run(conn, "UPDATE guild_members SET points = points + 1 WHERE guild_id = 1")
        await downgrade_on(conn, BEFORE_HISTOGRAM)
        assert (await conn.execute(text(HISTOGRAM_TRIGGERS))).scalar_one() == 0
        functions = "SELECT count(*) FROM pg_proc WHERE proname = 'guild_points_histogram_moved'"
        assert (await conn.execute(text(functions))).scalar_one() == 0
        tables = "SELECT to_regclass('guild_points_histogram') IS NULL"
        assert (await conn.execute(text(tables))).scalar_one()
