"""Committed rows and lock waits, for tests of concurrent transactions: each
transaction on its own connection, as two bot processes (or a bot and an admin) are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from quizbot import models
from quizbot.repositories import AchievementRepository
from quizbot.services.achievements import catalogue_rows


@asynccontextmanager
async def quiz_data(
    committed: Callable[[], AsyncSession],
    *,
    guild_id: int,
    topic: str,
    questions: int,
    players: Sequence[int],
    choices: Sequence[str] = ("Alpha", "Beta", "Gamma", "Delta"),
    difficulty: models.Difficulty = models.Difficulty.MEDIUM,
) -> AsyncIterator[None]:
    """The achievement catalogue, a guild and `questions` multiple-choice questions of
    `topic` (the first choice is right), committed; removed afterwards with the guild's
    quizzes and the `players`' users."""
    async with committed() as s, s.begin():
        await AchievementRepository(session=s).sync_catalogue(catalogue_rows())
        s.add(models.Guild(guild_id=guild_id, name=topic))
        for n in range(questions):
            s.add(
                models.Question(
                    topic=topic,
                    category="c",
                    difficulty=difficulty,
                    kind=models.QuestionKind.MULTIPLE_CHOICE,
                    prompt=f"{topic} {n}?",
                    choices=list(choices),
                    answer=choices[0],
                    explanation="Because.",
                    content_hash=f"{topic}-question-{n}",
                )
            )
    try:
        yield
    finally:
        async with committed() as s, s.begin():
            await s.execute(delete(models.Question).where(models.Question.topic == topic))
            await s.execute(delete(models.User).where(models.User.user_id.in_(players)))
            await s.execute(delete(models.Guild).where(models.Guild.guild_id == guild_id))


async def waits_for_a_lock(committed: Callable[[], AsyncSession], marker: str = "") -> bool:
    """Whether exactly one statement of this database containing `marker` comes to wait
    for a lock (looking for up to 10 s; no timing is assumed of the statement).

    pg_stat_activity keeps a statement's first 1,024 bytes (track_activity_query_size):
    the marker must be near its start. Each look is a new transaction: the view is a
    snapshot per transaction.
    """
    for _ in range(2000):
        async with committed() as probe:
            waiting = await probe.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE :pattern"
                ),
                {"pattern": f"%{marker}%"},
            )
        if waiting:
            return bool(waiting == 1)
        await asyncio.sleep(0.005)
    return False
