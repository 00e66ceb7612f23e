"""quizbot's models; importing this package registers every table on `Base.metadata`."""

from quizbot.models.achievement import Achievement, UserAchievement
from quizbot.models.base import Base
from quizbot.models.enums import Difficulty, QuestionKind, SessionMode, SessionStatus
from quizbot.models.guild import (
    Guild,
    GuildMember,
    GuildPointsHistogram,
    MemberDailyPoints,
    MemberPeriodPoints,
)
from quizbot.models.question import Question
from quizbot.models.quiz import Answer, QuizSession
from quizbot.models.review import ReviewCard
from quizbot.models.user import User

__all__ = [
    "Achievement",
    "Answer",
    "Base",
    "Difficulty",
    "Guild",
    "GuildMember",
    "GuildPointsHistogram",
    "MemberDailyPoints",
    "MemberPeriodPoints",
    "Question",
    "QuestionKind",
    "QuizSession",
    "ReviewCard",
    "SessionMode",
    "SessionStatus",
    "User",
    "UserAchievement",
]
