"""What goes over the wire for a unit of work. SQLAlchemy's statement events count the
statements; asyncpg's query logger sees what they do not: BEGIN, COMMIT, ROLLBACK and
the pool's ping (it does not log prepared statements, which the events count)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text

from quizbot.app import App
from quizbot.cache import QuizCache
from quizbot.config import Settings
from quizbot.observability import count_statements


@pytest.fixture
async def wire(database_url: str) -> AsyncIterator[tuple[App, list[str]]]:
    """An App on the test database whose connections log every query they send."""
    app = App.create(
        Settings(_env_file=None, redis_url=None, db_pool_monitor_interval=0),  # type: ignore[call-arg]
        database_url,
        QuizCache(QuizCache.memory_backend()),
    )
    sent: list[str] = []

    @event.listens_for(app.engine.sync_engine, "connect")
    def _log_queries(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(lambda q: sent.append(q.query))

    try:
        yield app, sent
    finally:
        await app.close()


async def test_a_read_is_a_ping_and_one_statement(wire: tuple[App, list[str]]) -> None:
    app, sent = wire
    await app.stats.member_stats(guild_id=1, user_id=2)  # connects, warms the pool
    await app.cache.clear()
    sent.clear()
    with count_statements(app.engine) as statements:
        await app.stats.member_stats(guild_id=1, user_id=2)
    # The pool's pre-ping, one bare ";" (SQLAlchemy's own wraps it in BEGIN/ROLLBACK),
    # and the stats statement, in autocommit: no BEGIN, no ROLLBACK around it.
    assert sent == [";"]
    assert statements.count == 1


async def test_a_write_is_a_ping_then_one_transaction(wire: tuple[App, list[str]]) -> None:
    app, sent = wire
    await app.guild_settings.get(1)  # warm the pool
    sent.clear()
    with count_statements(app.engine) as statements:
        async with app.sessionmaker() as session, session.begin():
            await session.execute(text("SELECT 1"))
    assert [q.split()[0] for q in sent] == [";", "BEGIN", "COMMIT;"]
    assert statements.count == 1


async def test_the_bot_connections_run_without_jit(wire: tuple[App, list[str]]) -> None:
    app, _ = wire
    async with app.read_sessionmaker() as session:
        assert (await session.execute(text("SHOW jit"))).scalar() == "off"
        name = (await session.execute(text("SHOW application_name"))).scalar()
    assert name == "quizbot"
