"""The migrations match the models, can be undone on a populated database, and fill
what they create from the data already there."""

from __future__ import annotations

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from quizbot.migrations import downgrade_on, upgrade_on
from quizbot.models import Base
from tests.database import create_database, drop_database, server_url

INITIAL = "55d06c60c2ef"


async def test_models_and_migrations_agree(connection: AsyncConnection) -> None:
    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(
            sync_conn,  # type: ignore[arg-type]
            opts={"compare_type": True, "compare_server_default": True},
        )
        return list(compare_metadata(context, Base.metadata))

    assert await connection.run_sync(diff) == []


async def test_downgrade_base_then_upgrade_head_on_a_populated_database() -> None:
    url = await create_database(server_url(), prefix="quizbot_migrations")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await upgrade_on(conn)
            for statement in (
                "INSERT INTO guilds (guild_id, name) VALUES (1, 'g')",
                "INSERT INTO users (user_id, name) VALUES (2, 'u')",
                "INSERT INTO guild_members (guild_id, user_id, display_name) VALUES (1, 2, 'u')",
                *_ANSWERED,
                "INSERT INTO answers (session_id, question_id, user_id, guild_id, topic, given, "
                "correct, response_ms, points) VALUES (1, 1, 2, 1, 't', 'a', true, 1, 5)",
                "INSERT INTO member_daily_points (guild_id, day, user_id, topic, points, answers) "
                "VALUES (1, current_date, 2, 't', 5, 1)",
                "INSERT INTO member_period_points (guild_id, period, starts, user_id, points) "
                "VALUES (1, 'week', current_date, 2, 5)",
            ):
                await conn.execute(text(statement))
        async with engine.begin() as conn:
            await downgrade_on(conn, "base")
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert tables == ["alembic_version"]
        async with engine.begin() as conn:
            await upgrade_on(conn)
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert set(Base.metadata.tables) <= set(tables)
    finally:
        await engine.dispose()
        await drop_database(url)


# Questions 1 to 5 and a quiz session 1 (of user 2 in guild 1), for answers.
_ANSWERED = (
    "INSERT INTO questions (id, topic, category, difficulty, kind, prompt, answer, content_hash) "
    "OVERRIDING SYSTEM VALUE SELECT i, 't', 'c', 'easy', 'true_false', 'p' || i, 'true', 'h' || i "
    "FROM generate_series(1, 5) i",
    "INSERT INTO quiz_sessions (id, guild_id, channel_id, user_id, mode, question_ids) "
    "OVERRIDING SYSTEM VALUE VALUES (1, 1, 1, 2, 'solo', '{1}')",
)


async def test_the_points_revisions_fill_their_tables_from_the_answers() -> None:
    """Per (guild, UTC day, member, topic): the points, the number of the stored answers
    and of the correct ones (a later revision); then per (guild, week or month, member):
    the points.

    The server's TimeZone is 14 hours ahead of UTC, so a day taken in local time
    would put every answer of the evening (UTC) on the next day.
    """
    url = await create_database(server_url(), prefix="quizbot_migrations")
    engine = create_async_engine(url)
    midnight = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    answers = [  # (question id, user, topic, points, answered at)
        (1, 2, "t", 10, midnight - dt.timedelta(microseconds=1)),  # the 23rd, just
        (2, 2, "t", 20, midnight),  # the 24th
        (3, 2, "t", 30, midnight + dt.timedelta(hours=23, minutes=59)),
        (4, 2, "u", 40, midnight + dt.timedelta(hours=12)),  # another topic
        (5, 2, "t", 0, midnight + dt.timedelta(hours=1)),  # wrong: an answer, not correct
        (1, 3, "t", 0, midnight + dt.timedelta(hours=12)),  # a wrong answer still counts one
        (2, 4, "t", 99, midnight),  # user 4 is no member of guild 1: cannot be referenced
        # Sunday the 22nd, just (UTC), but Monday in Kiritimati: the week of the 16th.
        (3, 3, "t", 5, midnight - dt.timedelta(days=1, microseconds=1)),
    ]
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET TIME ZONE 'Pacific/Kiritimati'"))
            await upgrade_on(conn, INITIAL)
            for statement in (
                "INSERT INTO guilds (guild_id, name) VALUES (1, 'g')",
                "INSERT INTO users (user_id, name) VALUES (2, 'u'), (3, 'v'), (4, 'w')",
                "INSERT INTO guild_members (guild_id, user_id, display_name) "
                "VALUES (1, 2, 'u'), (1, 3, 'v')",
                *_ANSWERED,
            ):
                await conn.execute(text(statement))
            for question, user, topic, points, at in answers:
                await conn.execute(
                    text(
                        "INSERT INTO answers (session_id, question_id, user_id, guild_id, topic, "
                        "given, correct, response_ms, points, answered_at) "
                        "VALUES (1, :q, :u, 1, :t, 'a', :p > 0, 1, :p, :at)"
                    ),
                    {"q": question, "u": user, "t": topic, "p": points, "at": at},
                )
            await upgrade_on(conn)
            rows = await conn.execute(
                text(
                    "SELECT guild_id, day, user_id, topic, points, answers, correct "
                    "FROM member_daily_points ORDER BY day, user_id, topic"
                )
            )
            assert [tuple(r) for r in rows] == [
                (1, dt.date(2026, 11, 22), 3, "t", 5, 1, 1),
                (1, dt.date(2026, 11, 23), 2, "t", 10, 1, 1),
                (1, dt.date(2026, 11, 24), 2, "t", 50, 3, 2),
                (1, dt.date(2026, 11, 24), 2, "u", 40, 1, 1),
                (1, dt.date(2026, 11, 24), 3, "t", 0, 1, 0),
            ]
            # The next revision sums the days per ISO week and month; a window without
            # points (user 3's week of the 23rd) has no row.
            rows = await conn.execute(
                text(
                    "SELECT guild_id, period, starts, user_id, points "
                    "FROM member_period_points ORDER BY period, starts, user_id"
                )
            )
            assert [tuple(r) for r in rows] == [
                (1, "month", dt.date(2026, 11, 1), 2, 100),
                (1, "month", dt.date(2026, 11, 1), 3, 5),
                (1, "week", dt.date(2026, 11, 16), 3, 5),
                (1, "week", dt.date(2026, 11, 23), 2, 100),
            ]
    finally:
        await engine.dispose()
        await drop_database(url)
