"""Review quizzes: a finished quiz schedules its answers, `ReviewService` asks what is due."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from quizbot import models
from quizbot.cache import QuizCache
from quizbot.errors import ActiveSessionError, InvalidInputError, NothingDueError
from quizbot.observability import count_statements
from quizbot.repositories import AchievementRepository
from quizbot.services.achievements import catalogue_rows
from quizbot.services.quiz import QuestionView, QuizFilters, QuizService
from quizbot.services.review import REVIEW_TOPIC, ReviewService
from quizbot.services.spaced_repetition import ReviewScheduler
from tests.factories import GuildFactory, QuestionFactory

GUILD, OTHER_GUILD = 4_000_000_000_000_001, 4_000_000_000_000_002
CHANNEL = 4_000_000_000_000_003
ALICE = 4_000_000_000_000_010


@pytest.fixture
async def services(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> tuple[QuizService, ReviewService]:
    await AchievementRepository(session=session).sync_catalogue(catalogue_rows())
    GuildFactory(guild_id=GUILD, name="School")
    GuildFactory(guild_id=OTHER_GUILD, name="Elsewhere")
    for i in range(3):
        QuestionFactory(topic="Chemistry", category="Elements", prompt=f"Chemistry {i}?")
    await session.commit()
    cache = QuizCache(QuizCache.memory_backend())
    quiz = QuizService(sessionmaker, cache, reviews=ReviewScheduler(fuzz=False))
    return quiz, ReviewService(sessionmaker, quiz)


async def _play(quiz: QuizService, answers: list[str], *, topic: str = "Chemistry") -> int:
    """Play a solo quiz, answering in order; returns the session id (finished)."""
    view: QuestionView | None = await quiz.start(
        guild_id=GUILD,
        guild_name="School",
        channel_id=CHANNEL,
        user_id=ALICE,
        display_name="alice",
        filters=QuizFilters(topic=topic, count=len(answers)),
    )
    assert view is not None
    session_id = view.session_id
    for given in answers:
        assert view is not None
        await quiz.answer(
            session_id=session_id,
            question_id=view.question_id,
            user_id=ALICE,
            display_name="alice",
            given=given,
        )
        view = await quiz.advance(session_id, view.position)
    return session_id


async def _start_review(review: ReviewService, **options: Any) -> QuestionView:
    return await review.start(
        guild_id=GUILD,
        guild_name="School",
        channel_id=CHANNEL,
        user_id=ALICE,
        display_name="alice",
        **options,
    )


async def _cards(session: AsyncSession) -> list[models.ReviewCard]:
    rows = await session.scalars(
        select(models.ReviewCard)
        .where(models.ReviewCard.user_id == ALICE)
        .order_by(models.ReviewCard.due)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def test_ending_a_quiz_schedules_every_answer(
    services: tuple[QuizService, ReviewService], session: AsyncSession
) -> None:
    quiz, _ = services
    session_id = await _play(quiz, ["Alpha", "Beta", "Alpha"])
    assert await _cards(session) == []  # answering writes no card: the answer path stays lean
    await quiz.finish(session_id)
    cards = await _cards(session)
    assert len(cards) == 3
    assert all(c.reps == 1 and c.last_review is not None for c in cards)
    # The wrong answer ("Beta") comes back first, with the lowest stability.
    assert cards[0].stability == min(c.stability for c in cards)
    assert cards[0].stability < cards[-1].stability


async def test_reviews_cost_the_finish_no_statement_more(
    services: tuple[QuizService, ReviewService], connection: AsyncConnection
) -> None:
    quiz, _ = services
    session_id = await _play(quiz, ["Alpha", "Beta", "Alpha"])
    with count_statements(connection) as log:
        await quiz.finish(session_id)
    review_statements = [s for s in log.statements if "review_cards" in s]
    # The cards come with the answers in the statement that ends the quiz, and are
    # written by the statement that counts the quiz for its players.
    assert len(review_statements) == 2
    assert "UPDATE quiz_sessions" in review_statements[0]
    assert "INSERT INTO review_cards" in review_statements[1]
    assert "UPDATE guild_members" in review_statements[1]


async def test_a_repeated_finish_schedules_nothing_again(
    services: tuple[QuizService, ReviewService], session: AsyncSession
) -> None:
    quiz, _ = services
    session_id = await _play(quiz, ["Alpha"])
    await quiz.finish(session_id)
    await quiz.finish(session_id)
    assert [c.reps for c in await _cards(session)] == [1]


async def test_nothing_to_review_says_why(services: tuple[QuizService, ReviewService]) -> None:
    quiz, review = services
    # Its own class (an invalid input to the cog, which shows the message), so that a
    # caller can tell "nothing due" from a bad request.
    assert issubclass(NothingDueError, InvalidInputError)
    with pytest.raises(NothingDueError, match="play a quiz first"):
        await _start_review(review)
    await quiz.finish(await _play(quiz, ["Alpha"]))
    with pytest.raises(NothingDueError, match="next review is due in about"):
        await _start_review(review)


async def test_a_review_asks_the_due_questions_most_overdue_first(
    services: tuple[QuizService, ReviewService], session: AsyncSession
) -> None:
    quiz, review = services
    await quiz.finish(await _play(quiz, ["Alpha", "Beta", "Alpha"]))
    cards = await _cards(session)
    later = max(c.due for c in cards) + dt.timedelta(minutes=1)
    assert await review.due(guild_id=GUILD, user_id=ALICE, now=later) == (3, cards[0].due)
    view = await _start_review(review, count=2, now=later)
    assert view.total == 2
    assert view.question_id == cards[0].question_id
    row = await session.get(models.QuizSession, view.session_id, populate_existing=True)
    assert row is not None and row.topic == REVIEW_TOPIC
    assert row.question_ids == [cards[0].question_id, cards[1].question_id]
    # One quiz at a time per player and channel, reviews included.
    with pytest.raises(ActiveSessionError):
        await _start_review(review, now=later)


async def test_answering_a_review_reschedules_its_cards(
    services: tuple[QuizService, ReviewService], session: AsyncSession
) -> None:
    quiz, review = services
    await quiz.finish(await _play(quiz, ["Alpha"]))
    (card,) = await _cards(session)
    first_due = card.due
    view = await _start_review(review, now=first_due + dt.timedelta(minutes=1))
    await quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=ALICE,
        display_name="alice",
        given="Alpha",
    )
    await quiz.finish(view.session_id)
    (again,) = await _cards(session)
    assert again.reps == 2
    assert again.due > first_due


async def test_another_guilds_own_questions_are_not_reviewed_here(
    services: tuple[QuizService, ReviewService], session: AsyncSession
) -> None:
    quiz, review = services
    private = QuestionFactory(guild_id=OTHER_GUILD, topic="Secret", prompt="Other guild only?")
    await session.commit()
    await quiz.finish(await _play(quiz, ["Alpha"]))
    session.add(
        models.ReviewCard(
            user_id=ALICE,
            question_id=private.id,
            due=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
            reps=1,
        )
    )
    await session.commit()
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
    due_here, _ = await review.due(guild_id=GUILD, user_id=ALICE, now=far)
    due_there, _ = await review.due(guild_id=OTHER_GUILD, user_id=ALICE, now=far)
    assert (due_here, due_there) == (1, 2)
    # The review's own statement takes the same cards: the private question is the most
    # overdue of Alice's, but not one this guild can ask.
    view = await _start_review(review, now=far)
    row = await session.get(models.QuizSession, view.session_id, populate_existing=True)
    assert row is not None and private.id not in row.question_ids and len(row.question_ids) == 1


async def test_a_review_starts_in_one_statement_and_nothing_due_starts_nothing(
    services: tuple[QuizService, ReviewService], session: AsyncSession, connection: AsyncConnection
) -> None:
    quiz, review = services
    await quiz.finish(await _play(quiz, ["Alpha", "Beta"]))
    cards = await _cards(session)
    await quiz.settings.get(GUILD)  # the guild's settings are cached, as in a running bot
    before = await _sessions(session)
    early = cards[0].due - dt.timedelta(seconds=1)
    with (
        count_statements(connection) as log,
        pytest.raises(NothingDueError, match="next review is due"),
    ):
        await _start_review(review, now=early)
    # The start's statement found nothing due and inserted nothing; the reply's
    # "when" is a second read.
    assert len(log.statements) == 2
    assert await _sessions(session) == before
    with count_statements(connection) as log:
        view = await _start_review(review, now=cards[-1].due)
    assert len(log.statements) == 1  # the due cards, the member and the session
    assert view.total == 2 and await _sessions(session) == before + 1


async def test_a_review_with_nothing_due_writes_nothing(
    services: tuple[QuizService, ReviewService], session: AsyncSession
) -> None:
    """Not even the member's rows: someone who never played asks for a review."""
    _, review = services
    newcomer = ALICE + 1
    with pytest.raises(NothingDueError, match="play a quiz first"):
        await review.start(
            guild_id=GUILD,
            guild_name="School",
            channel_id=CHANNEL,
            user_id=newcomer,
            display_name="new",
        )
    assert await session.get(models.User, newcomer) is None
    assert await session.get(models.GuildMember, (GUILD, newcomer)) is None


async def _sessions(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(models.QuizSession)
        .where(models.QuizSession.user_id == ALICE)
    )
    return int(count or 0)
