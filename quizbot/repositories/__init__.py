"""Data access: one repository per aggregate; each takes a session, flushes, never commits."""

from quizbot.repositories.achievements import AchievementRepository
from quizbot.repositories.base import Executor, ExecutorFactory
from quizbot.repositories.guilds import GuildRepository
from quizbot.repositories.members import (
    MemberDelta,
    MemberRepository,
    MemberStats,
    RecentAchievement,
    TopicStat,
    aggregate_deltas,
)
from quizbot.repositories.questions import QuestionRepository, question_hash
from quizbot.repositories.reviews import ReviewRepository
from quizbot.repositories.sessions import (
    AnswerRepository,
    NewSession,
    QuestionDraw,
    SessionRepository,
)
from quizbot.repositories.users import UserRepository

__all__ = [
    "AchievementRepository",
    "AnswerRepository",
    "Executor",
    "ExecutorFactory",
    "GuildRepository",
    "MemberDelta",
    "MemberRepository",
    "MemberStats",
    "NewSession",
    "QuestionDraw",
    "QuestionRepository",
    "RecentAchievement",
    "ReviewRepository",
    "SessionRepository",
    "TopicStat",
    "UserRepository",
    "aggregate_deltas",
    "question_hash",
]
