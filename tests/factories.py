"""factory-boy factories for every model.

Persistence is left at None: `create()` only calls the synchronous
`AsyncSession.add`; tests then `await session.flush()`. The session is the
current test's, set by the `session` fixture through `use_session`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from sqlalchemy.ext.asyncio import AsyncSession

from quizbot import models
from quizbot.repositories.questions import question_hash

_current: dict[str, AsyncSession | None] = {"session": None}


def use_session(session: AsyncSession | None) -> None:
    """Make factories add their objects to `session` (None after the test)."""
    _current["session"] = session


def _session() -> AsyncSession:
    session = _current["session"]
    if session is None:
        raise RuntimeError("factories need the `session` fixture")
    return session


class BaseFactory(factory.alchemy.SQLAlchemyModelFactory):  # type: ignore[misc]
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _session
        sqlalchemy_session_persistence = None


def snowflake(n: int) -> int:
    """A plausible Discord id, unique per factory sequence number."""
    return 100_000_000_000_000_000 + n


class GuildFactory(BaseFactory):
    class Meta:
        model = models.Guild

    guild_id = factory.Sequence(snowflake)
    name = factory.Sequence(lambda n: f"Guild {n}")
    settings: Any = factory.LazyFunction(dict)


class UserFactory(BaseFactory):
    class Meta:
        model = models.User

    user_id = factory.Sequence(lambda n: snowflake(500_000 + n))
    name = factory.Sequence(lambda n: f"player{n}")
    points = 0
    xp = 0
    level = 1


class GuildMemberFactory(BaseFactory):
    class Meta:
        model = models.GuildMember

    guild = factory.SubFactory(GuildFactory)
    user = factory.SubFactory(UserFactory)
    display_name = factory.LazyAttribute(lambda o: o.user.name)
    points = 0
    xp = 0
    level = 1
    answered = 0
    correct = 0
    quizzes_taken = 0
    answer_streak = 0
    best_streak = 0
    daily_streak = 0
    best_daily_streak = 0


class MemberDayFactory(BaseFactory):
    """A member's answers of one UTC day in one topic (`member_daily_points`), as the
    answer writes keep it: what /stats' per-topic accuracy and the end-of-quiz
    achievements sum (AnswerFactory writes an answer row only)."""

    class Meta:
        model = models.MemberDailyPoints
        exclude = ("member",)

    member = factory.SubFactory(GuildMemberFactory)
    guild_id = factory.LazyAttribute(lambda o: o.member.guild.guild_id)
    user_id = factory.LazyAttribute(lambda o: o.member.user.user_id)
    day = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC).date())
    topic = "General"
    answers = 1
    correct = 1
    points = factory.LazyAttribute(lambda o: 100 * o.correct)


class QuestionFactory(BaseFactory):
    class Meta:
        model = models.Question

    guild_id = None
    topic = "Science"
    category = "General"
    difficulty = models.Difficulty.EASY
    kind = models.QuestionKind.MULTIPLE_CHOICE
    prompt = factory.Sequence(lambda n: f"Question number {n}?")
    choices = factory.LazyFunction(lambda: ["Alpha", "Beta", "Gamma", "Delta"])
    answer = "Alpha"
    accepted: Any = factory.LazyFunction(list)
    tolerance = None
    explanation = "Because Alpha comes first."
    source = "test"
    enabled = True
    content_hash = factory.LazyAttribute(lambda o: question_hash(o.topic, o.prompt))


class QuizSessionFactory(BaseFactory):
    class Meta:
        model = models.QuizSession

    guild = factory.SubFactory(GuildFactory)
    channel_id = factory.Sequence(lambda n: snowflake(900_000 + n))
    user = factory.SubFactory(UserFactory)
    mode = models.SessionMode.SOLO
    status = models.SessionStatus.ACTIVE
    topic = None
    category = None
    difficulty = "mixed"
    question_ids: Any = factory.LazyFunction(list)
    position = 0
    time_limit = 30


class AnswerFactory(BaseFactory):
    class Meta:
        model = models.Answer

    session = factory.SubFactory(QuizSessionFactory)
    question = factory.SubFactory(QuestionFactory)
    user_id = factory.LazyAttribute(lambda o: o.session.user.user_id)
    guild_id = factory.LazyAttribute(lambda o: o.session.guild.guild_id)
    topic = factory.LazyAttribute(lambda o: o.question.topic)
    given = "Alpha"
    correct = True
    response_ms = 1500
    points = 100
    answered_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))


class AchievementFactory(BaseFactory):
    class Meta:
        model = models.Achievement

    code = factory.Sequence(lambda n: f"test_achievement_{n}")
    name = factory.Sequence(lambda n: f"Test achievement {n}")
    description = "Awarded in tests."
    icon = "🏅"
    xp_reward = 0


class UserAchievementFactory(BaseFactory):
    class Meta:
        model = models.UserAchievement

    user = factory.SubFactory(UserFactory)
    guild = factory.SubFactory(GuildFactory)
    achievement = factory.SubFactory(AchievementFactory)
    earned_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))


class ReviewCardFactory(BaseFactory):
    class Meta:
        model = models.ReviewCard

    user = factory.SubFactory(UserFactory)
    question = factory.SubFactory(QuestionFactory)
    due = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    stability = 1.0
    difficulty = 5.0
    reps = 0
    lapses = 0
