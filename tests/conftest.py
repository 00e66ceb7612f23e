"""The test harness (DESIGN §6): one throwaway database per run, migrated once with
Alembic; per test one connection, one outer transaction, sessions joined to it
through savepoints, everything rolled back at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio
import redis.exceptions
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from quizbot.cache import QuizCache, create_cache
from quizbot.config import Settings
from tests import factories
from tests.database import IN_CI, drop_database, migrated_database


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A fresh database, migrated to head, dropped after the run."""
    url = await migrated_database()
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


@pytest.fixture(scope="session")
async def redis_url() -> str:
    """A Redis for the cache tests (QUIZBOT_TEST_REDIS_URL, else 127.0.0.1:6379 db 15).

    Missing Redis skips those tests on a developer's machine and fails them with CI=true.
    """
    url = os.environ.get("QUIZBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.ping()
    except redis.exceptions.ConnectionError as exc:
        if IN_CI:
            raise RuntimeError(f"CI=true but Redis does not answer at {url}") from exc
        pytest.skip(f"no Redis at {url}")
    finally:
        await client.aclose()
    return url


@pytest.fixture
async def redis_cache(redis_url: str) -> AsyncIterator[QuizCache]:
    """A QuizCache on Redis in a namespace of its own, emptied afterwards."""
    namespace = f"quizbot-test-{uuid.uuid4().hex[:8]}"
    cache = QuizCache(create_cache(Settings(redis_url=redis_url), namespace=namespace))
    try:
        yield cache
    finally:
        await cache.clear()
        await cache.close()
