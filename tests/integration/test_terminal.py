"""`quizbot play`: the terminal game with answers piped in, in process and as a command."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quizbot import models
from quizbot.cache import QuizCache
from quizbot.repositories import AchievementRepository
from quizbot.services.achievements import catalogue_rows
from quizbot.services.quiz import QuestionView, QuizFilters, QuizService
from quizbot.services.stats import StatsService
from quizbot.terminal import TERMINAL_GUILD_ID, play, terminal_user, to_answer
from tests.database import create_database, drop_database, server_url
from tests.factories import QuestionFactory

TOPIC = "Terminal Test"


@pytest.fixture
async def services(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> tuple[QuizService, StatsService]:
    await AchievementRepository(session=session).sync_catalogue(catalogue_rows())
    QuestionFactory(topic=TOPIC, category="A", prompt="Pick Alpha?", answer="Alpha")
    QuestionFactory(
        topic=TOPIC,
        category="B",
        prompt="Water is wet?",
        kind=models.QuestionKind.TRUE_FALSE,
        choices=[],
        answer="True",
    )
    QuestionFactory(
        topic=TOPIC,
        category="C",
        prompt="Capital of France?",
        kind=models.QuestionKind.FREE_TEXT,
        choices=[],
        answer="Paris",
        explanation="Paris has been the capital since 987.",
    )
    await session.commit()
    cache = QuizCache(QuizCache.memory_backend())
    return QuizService(sessionmaker, cache), StatsService(sessionmaker, cache)


def _console() -> Console:
    return Console(file=io.StringIO(), width=100, force_terminal=False, color_system=None)


# What a player types for each question: a choice's text in another case, a letter
# for True, and a typo that is forgiven.
ANSWERS = {"Pick Alpha?": "alpha", "Water is wet?": "T", "Capital of France?": "pariss"}


class Player(io.StringIO):
    """Standard input that answers whichever question the console showed last."""

    def __init__(self, screen: io.StringIO) -> None:
        super().__init__()
        self.screen = screen

    def readline(self, size: int | None = -1) -> str:
        shown = self.screen.getvalue()
        prompt = max(ANSWERS, key=shown.rfind)
        return ANSWERS[prompt] + "\n"


async def test_a_piped_quiz_is_played_to_its_summary(
    services: tuple[QuizService, StatsService], session: AsyncSession
) -> None:
    quiz, stats = services
    console = _console()
    output: io.StringIO = console.file  # type: ignore[assignment]
    summary = await play(
        quiz,
        stats,
        QuizFilters(topic=TOPIC, count=3),
        console=console,
        stdin=Player(output),
        channel_id=77,
    )
    text = output.getvalue()
    assert summary.asked == 3
    assert summary.correct == 3  # "pariss" is a forgiven typo, "T" is True, "alpha" a choice
    assert "Quiz over · 3/3 questions" in text
    assert "Paris has been the capital since 987." in text  # the explanation is shown
    assert "Leaderboard" in text
    user_id, _ = terminal_user()
    rows = await session.scalar(
        select(func.count())
        .select_from(models.Answer)
        .where(models.Answer.user_id == user_id, models.Answer.guild_id == TERMINAL_GUILD_ID)
    )
    assert rows == 3
    member = await stats.member_stats(guild_id=TERMINAL_GUILD_ID, user_id=user_id)
    assert member.points == summary.points > 0


async def test_end_of_input_stops_and_still_summarises(
    services: tuple[QuizService, StatsService],
) -> None:
    quiz, stats = services
    console = _console()
    summary = await play(
        quiz,
        stats,
        QuizFilters(topic=TOPIC, count=3),
        console=console,
        stdin=io.StringIO("\n"),  # skip the first question, then the input ends
        channel_id=78,
    )
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "skipped" in text and "Stopping the quiz." in text
    assert summary.answered == 0
    assert "No points scored yet" in text


def _view(kind: models.QuestionKind, choices: tuple[str, ...]) -> QuestionView:
    return QuestionView(
        session_id=1,
        position=0,
        total=1,
        question_id=1,
        topic="t",
        category="c",
        difficulty=models.Difficulty.EASY,
        kind=kind,
        prompt="?",
        choices=choices,
        time_limit=30,
        started_at=None,
        mode=models.SessionMode.SOLO,
    )


def test_letters_pick_choices_and_anything_else_is_text() -> None:
    mc = _view(models.QuestionKind.MULTIPLE_CHOICE, ("x", "y", "z"))
    assert to_answer(mc, "b\n") == "y"
    assert to_answer(mc, "D") == "D"  # past the last choice: taken as text
    free = _view(models.QuestionKind.FREE_TEXT, ())
    assert to_answer(free, " a ") == "a"


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    url = await create_database(server_url(), prefix="quizbot_play")
    yield url
    await drop_database(url)


async def test_the_play_command_with_piped_answers(fresh_database: str) -> None:
    """What `printf ... | make run` does without DISCORD_TOKEN: migrate, seed, play."""
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database,
        "DISCORD_TOKEN": "",
        "REDIS_URL": "",
        "COLUMNS": "100",
    }

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "quizbot.cli", "start"],
            input="A\nT\nparis\n\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    done = await asyncio.to_thread(run)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Quiz over" in done.stdout
    assert "Answer:" in done.stdout  # feedback with the canonical answer was shown
