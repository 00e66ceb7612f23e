"""The per-day points roll-up (member_daily_points): every writer of answers keeps it
equal to the answers' sums per (guild, UTC day, member, topic)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from quizbot import models
from quizbot.cache import QuizCache
from quizbot.repositories import AchievementRepository
from quizbot.services.achievements import catalogue_rows
from quizbot.services.quiz import AnswerOutcome, QuestionView, QuizFilters, QuizService
from tests.daily_points import answer_sums, daily_points
from tests.factories import GuildFactory, QuestionFactory

GUILD = 7_100_000_000_000_001
OTHER_GUILD = 7_100_000_000_000_002
CHANNELS = [7_100_000_000_000_100 + i for i in range(12)]
PLAYERS = [7_100_000_000_000_200 + i for i in range(6)]
TOPICS = ("Roll A", "Roll B")


@pytest.fixture(params=["Pacific/Kiritimati", "Etc/GMT+12"])
async def far_time_zone(request: pytest.FixtureRequest, connection: AsyncConnection) -> None:
    """The session's TimeZone 14 hours ahead of UTC, or 12 behind: at any hour of the
    day one of the two has another date than UTC, so a day taken in local time fails."""
    await connection.execute(text(f"SET TIME ZONE '{request.param}'"))


@pytest.fixture
async def bank(session: AsyncSession) -> None:
    await AchievementRepository(session=session).sync_catalogue(catalogue_rows())
    GuildFactory(guild_id=GUILD, name="Roll-up")
    GuildFactory(guild_id=OTHER_GUILD, name="Other")
    for topic in TOPICS:
        for i in range(3):
            QuestionFactory(topic=topic, category="c", prompt=f"{topic} {i}?")
    await session.commit()


def _service(sessionmaker: async_sessionmaker[AsyncSession], *, batch: int | None) -> QuizService:
    """`batch`: group commit of exactly that many answers; None: one by one."""
    return QuizService(
        sessionmaker,
        QuizCache(QuizCache.memory_backend()),
        rng=random.Random(7),
        answer_group_commit=batch is not None,
        answer_group_commit_ms=1e5,
        answer_batch_max=batch or 1,
    )


async def _quiz(quiz: QuizService, guild: int, channel: int, topic: str) -> QuestionView:
    return await quiz.start(
        guild_id=guild,
        guild_name="Roll-up",
        channel_id=channel,
        user_id=PLAYERS[0],
        display_name="host",
        mode=models.SessionMode.CHANNEL,
        filters=QuizFilters(topic=topic, count=3),
    )


async def _clicks(
    quiz: QuizService, plan: Sequence[tuple[QuestionView, int, str]]
) -> list[AnswerOutcome]:
    """Every (question, player, answer) of `plan`: all at once when the answers are
    group-committed, else one after the other (the tests' sessions share a connection)."""
    answers = [
        quiz.answer(
            session_id=view.session_id,
            question_id=view.question_id,
            user_id=user,
            display_name=f"p{user % 1000}",
            given=given,
        )
        for view, user, given in plan
    ]
    if quiz.answer_batcher is not None:
        return list(await asyncio.gather(*answers))
    return [await answer for answer in answers]


async def test_batches_and_one_by_one_answers_with_double_clicks_keep_the_roll_up(
    bank: None,
    far_time_zone: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rng = random.Random(5)
    batched = _service(sessionmaker, batch=24)
    one_by_one = _service(sessionmaker, batch=None)
    for quiz, guild, channels in (
        (batched, GUILD, CHANNELS[:4]),
        (one_by_one, OTHER_GUILD, CHANNELS[4:8]),
    ):
        # Two quizzes per topic: a member answers the same topic twice in one batch.
        views = [
            await _quiz(quiz, guild, channel, TOPICS[i % 2]) for i, channel in enumerate(channels)
        ]
        plan = [
            (view, user, rng.choice(["Alpha", "Alpha", "Beta"]))
            for view in views
            for user in PLAYERS
        ]
        plan = plan[:20] + rng.sample(plan[:20], 4)  # four double clicks
        rng.shuffle(plan)
        outcomes = await _clicks(quiz, plan)
        assert sum(o.recorded for o in outcomes) == 20
        assert sum(o.reason == "duplicate" for o in outcomes) == 4
    assert batched.answer_batcher is not None and batched.answer_batcher.stats.batches == 1
    rolled = await daily_points(session, [GUILD, OTHER_GUILD])
    assert rolled == await answer_sums(session, [GUILD, OTHER_GUILD])
    assert {topic for _g, _d, _u, topic in rolled} == set(TOPICS)
    assert {guild for guild, _d, _u, _t in rolled} == {GUILD, OTHER_GUILD}
    await batched.close()
