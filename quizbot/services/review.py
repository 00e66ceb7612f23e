"""Review quizzes: `/review` and `quizbot review` ask the questions due for a member
(scheduled by `spaced_repetition` when their quizzes ended)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quizbot.errors import InvalidInputError, NothingDueError
from quizbot.models import SessionMode
from quizbot.repositories import NewSession
from quizbot.repositories.reviews import ReviewRepository
from quizbot.repositories.sessions import DueReviews
from quizbot.services.quiz import QuestionView, QuizService

REVIEW_TOPIC = "Review"
MAX_REVIEW_QUESTIONS = 50


class ReviewService:
    """Review quizzes made of the questions due for a member."""

    def __init__(
        self,
        reads: async_sessionmaker[AsyncSession],
        quiz: QuizService,
    ) -> None:
        """Args:
        reads: sessions for read-only units of work (autocommit sessions in the app).
        quiz: starts the review's quiz and runs it like any other.
        """
        self._reads = reads
        self._quiz = quiz

    async def due(
        self, *, guild_id: int, user_id: int, now: dt.datetime | None = None
    ) -> tuple[int, dt.datetime | None]:
        """How many reviews are due for a member here, and when the next one is due.

        Args:
            guild_id: the guild (its own questions and the shared bank count).
            user_id: the member.
            now: the current time (tests).

        Returns:
            (cards due now, the earliest due time of any card, or None without cards).
        """
        async with self._reads() as session:
            return await ReviewRepository(session=session).due_summary(
                user_id=user_id, guild_id=guild_id, now=now or dt.datetime.now(dt.UTC)
            )

    async def start(
        self,
        *,
        guild_id: int,
        guild_name: str,
        channel_id: int,
        user_id: int,
        display_name: str,
        count: int = 10,
        now: dt.datetime | None = None,
    ) -> QuestionView:
        """Start a solo quiz of the member's due reviews, most overdue first.

        Args:
            guild_id: the guild the quiz runs in.
            guild_name: kept for the guild row.
            channel_id: the channel (one solo quiz per player and channel).
            user_id: who reviews.
            display_name: their name, kept for leaderboards.
            count: at most this many questions (1 to 50).
            now: the current time (tests).

        Returns:
            The first question.

        Raises:
            NothingDueError: nothing is due (the message says when something will be).
            InvalidInputError: `count` is out of range, or quizzes are off in the channel.
            ActiveSessionError: the member already has a quiz running in this channel.
        """
        if not 1 <= count <= MAX_REVIEW_QUESTIONS:
            raise InvalidInputError(f"a review has 1 to {MAX_REVIEW_QUESTIONS} questions")
        now = now or dt.datetime.now(dt.UTC)
        settings = await self._quiz.settings.get(guild_id)
        if settings.channels and channel_id not in settings.channels:
            raise InvalidInputError("quizzes are not enabled in this channel")
        # One statement takes the due questions and starts the quiz (it was two: the
        # due cards were read first). Only when nothing is due is a second one needed,
        # to say when something will be.
        view = await self._quiz.open_review(
            NewSession(
                guild_id=guild_id,
                guild_name=guild_name,
                channel_id=channel_id,
                user_id=user_id,
                display_name=display_name,
                mode=SessionMode.SOLO,
                questions=DueReviews(count=count, now=now),
                time_limit=settings.timer,
                question_started_at=now,
                topic=REVIEW_TOPIC,
            )
        )
        if view is None:
            _, next_due = await self.due(guild_id=guild_id, user_id=user_id, now=now)
            raise NothingDueError(_nothing_due(next_due, now))
        return view


def _nothing_due(next_due: dt.datetime | None, now: dt.datetime) -> str:
    if next_due is None:
        return "nothing to review yet: play a quiz first, and its questions come back here"
    return f"nothing is due for review; the next review is due {_in(next_due - now)}"


def _in(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return "within the hour"
    if hours < 48:
        return f"in about {round(hours)} hours"
    return f"in about {round(hours / 24)} days"
