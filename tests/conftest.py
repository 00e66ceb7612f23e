"""The test harness (DESIGN §6): one throwaway database per run, migrated once with
Alembic; per test one connection, one outer transaction, sessions joined to it
through savepoints, everything rolled back at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from quizbot.migrations import upgrade_on
from tests import factories
from tests.database import create_database, drop_database, server_url


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A fresh database, migrated to head, dropped after the run."""
    url = await create_database(server_url())
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await upgrade_on(conn)
    finally:
        await engine.dispose()
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The run's engine; tests that need parallel connections take them from here."""
    eng = create_async_engine(database_url, pool_size=10, max_overflow=10)
    yield eng
    await eng.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One connection inside an outer transaction that is always rolled back."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield conn
        finally:
            if outer.is_active:
                await outer.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """What services receive: sessions whose commits are savepoints of the outer transaction."""
    return async_sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
async def session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session for arranging data with the factories and for asserting."""
    async with sessionmaker() as s:
        factories.use_session(s)
        try:
            yield s
        finally:
            factories.use_session(None)


@pytest.fixture
def committed(engine: AsyncEngine) -> Callable[[], AsyncSession]:
    """Sessions that really commit, for tests of concurrent transactions; they clean up."""
    return async_sessionmaker(engine, expire_on_commit=False)
