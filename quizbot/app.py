"""Wiring: the resources a quizbot process creates once and hands to whoever needs them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from quizbot.cache import QuizCache
from quizbot.config import Settings
from quizbot.db import create_engine, create_sessionmaker, database_url
from quizbot.migrations import upgrade
from quizbot.models import Question
from quizbot.repositories import AchievementRepository
from quizbot.services.achievements import catalogue_rows
from quizbot.services.guild_settings import GuildSettingsService
from quizbot.services.question_bank import QuestionBankService
from quizbot.services.quiz import QuizService
from quizbot.services.review import ReviewService
from quizbot.services.stats import StatsService

log = logging.getLogger(__name__)


def prepare_database(settings: Settings) -> str:
    """Resolve the database (starting the embedded one if needed) and migrate it.

    Blocking; call before the event loop starts. Returns the database URL.
    """
    url = database_url(settings)
    upgrade(url)
    return url


@dataclass
class App:
    """One process's engine, cache and services."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: QuizCache
    guild_settings: GuildSettingsService
    quiz: QuizService
    stats: StatsService
    bank: QuestionBankService
    review: ReviewService

    @classmethod
    def create(cls, settings: Settings, url: str, cache: QuizCache | None = None) -> App:
        """Build the services over one engine and one cache."""
        engine = create_engine(settings, url)
        sessions = create_sessionmaker(engine)
        cache = cache or QuizCache.from_settings(settings)
        guild_settings = GuildSettingsService(sessions, cache)
        quiz = QuizService(sessions, cache, guild_settings)
        return cls(
            engine=engine,
            sessionmaker=sessions,
            cache=cache,
            guild_settings=guild_settings,
            quiz=quiz,
            stats=StatsService(sessions, cache),
            bank=QuestionBankService(sessions, cache),
            review=ReviewService(sessions, quiz),
        )

    async def bootstrap(self, *, seed: bool = True) -> None:
        """Upsert the achievements catalogue; load the bundled bank when no question exists."""
        async with self.sessionmaker() as session, session.begin():
            await AchievementRepository(session=session).sync_catalogue(catalogue_rows())
            empty = (await session.scalar(select(func.count()).select_from(Question))) == 0
        if seed and empty:
            log.info("first start: loading the bundled question bank")
            report = await self.bank.seed_bundled()
            log.info("loaded %d questions", report.inserted)

    async def close(self) -> None:
        """Release the cache and the pool."""
        await self.cache.close()
        await self.engine.dispose()
