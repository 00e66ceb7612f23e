"""`quizbot play`: a quiz in the terminal, on the same services and database as the bot.

Works interactively and with answers piped on standard input (one answer per line),
so it can be scripted. An empty line skips a question; `quit` or end of input stops.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import time
import zlib
from typing import TextIO

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from quizbot.models import QuestionKind, SessionMode
from quizbot.services.quiz import AnswerOutcome, QuestionView, QuizFilters, QuizService, QuizSummary
from quizbot.services.review import ReviewService
from quizbot.services.stats import LeaderboardPage, StatsService

# The terminal plays in a guild of its own, so its scores never mix with a server's.
TERMINAL_GUILD_ID = 1
TERMINAL_GUILD_NAME = "Terminal"
LETTERS = "ABCDEFGHIJ"


def terminal_user() -> tuple[int, str]:
    """A stable id and the name of whoever runs the terminal game."""
    name = getpass.getuser() or "player"
    return 10_000 + zlib.crc32(name.encode()), name


def render_question(view: QuestionView) -> Panel:
    """The question with lettered choices and its timer."""
    lines = [f"[bold]{view.prompt}[/bold]", ""]
    if view.kind is QuestionKind.MULTIPLE_CHOICE:
        lines += [f"  [cyan]{LETTERS[i]}[/cyan]  {c}" for i, c in enumerate(view.choices)]
    elif view.kind is QuestionKind.TRUE_FALSE:
        lines += ["  [cyan]T[/cyan]  True", "  [cyan]F[/cyan]  False"]
    else:
        lines += ["  [dim]type your answer[/dim]"]
    title = (
        f"Question {view.number}/{view.total} · {view.topic} · {view.category} · "
        f"{view.difficulty.value} · ⏱ {view.time_limit} s"
    )
    return Panel("\n".join(lines), title=title, title_align="left")


def render_outcome(outcome: AnswerOutcome) -> Panel:
    """Feedback: right or wrong, points, the answer and the explanation."""
    if outcome.correct:
        head = f"[green]✔ Correct![/green]  +{outcome.points} points, +{outcome.xp} XP"
        if outcome.streak > 1:
            head += f"  🔥 streak {outcome.streak}"
    else:
        head = f"[red]✘ Not quite.[/red]  +{outcome.xp} XP"
    lines = [head, f"Answer: [bold]{outcome.canonical_answer}[/bold]"]
    if outcome.explanation:
        lines.append(f"[dim]{outcome.explanation}[/dim]")
    if outcome.level_up:
        lines.append(f"[yellow]⬆ Level up! You reached level {outcome.level}.[/yellow]")
    lines += [
        f"{a.icon} Achievement unlocked: [bold]{a.name}[/bold] — {a.description}"
        for a in outcome.achievements
    ]
    return Panel("\n".join(lines), border_style="green" if outcome.correct else "red")


def render_summary(summary: QuizSummary) -> Table:
    """The end-of-quiz table."""
    table = Table(title=f"Quiz over · {summary.asked}/{summary.total_questions} questions")
    for column in ("player", "answered", "correct", "accuracy", "points"):
        table.add_column(column, justify="left" if column == "player" else "right")
    for p in summary.players:
        accuracy = f"{p.correct / p.answered:.0%}" if p.answered else "–"
        table.add_row(p.display_name, str(p.answered), str(p.correct), accuracy, str(p.points))
    return table


def render_leaderboard(page: LeaderboardPage) -> Table:
    """A leaderboard page and the caller's own line."""
    table = Table(title="Leaderboard")
    table.add_column("#", justify="right")
    table.add_column("player")
    table.add_column("points", justify="right")
    for e in page.entries:
        table.add_row(str(e.rank), e.name, str(e.points))
    if not page.entries:
        table.caption = "No points scored yet: a right answer puts you on the board."
    if page.me and all(e.user_id != page.me.user_id for e in page.entries):
        table.add_row("…", "", "")
        table.add_row(str(page.me.rank), page.me.name + " (you)", str(page.me.points))
    return table


def to_answer(view: QuestionView, line: str) -> str:
    """Turn what was typed into an answer: letters pick choices, T/F pick true/false."""
    text = line.strip()
    if view.kind is QuestionKind.MULTIPLE_CHOICE and len(text) == 1 and text.upper() in LETTERS:
        index = LETTERS.index(text.upper())
        if index < len(view.choices):
            return view.choices[index]
    return text


async def _read_line(stream: TextIO) -> str | None:
    # Reading stdin blocks: it runs in a worker thread so the event loop stays free.
    line = await asyncio.to_thread(stream.readline)
    return None if line == "" else line


async def play(
    quiz: QuizService,
    stats: StatsService,
    filters: QuizFilters,
    *,
    console: Console | None = None,
    stdin: TextIO | None = None,
    channel_id: int | None = None,
    review: ReviewService | None = None,
) -> QuizSummary:
    """Play one quiz in the terminal, then show stats and the leaderboard.

    Args:
        quiz: the quiz engine.
        stats: stats and leaderboards.
        filters: what to play (a review uses only the number of questions).
        console: where to print (default stdout).
        stdin: where answers come from (default sys.stdin).
        channel_id: the pseudo-channel (default: one per player).
        review: given, play the questions due for review instead of new ones.

    Returns:
        The quiz summary.
    """
    out = console or Console()
    source = stdin or sys.stdin
    user_id, name = terminal_user()
    channel = channel_id or user_id
    view: QuestionView | None
    if review is not None:
        view = await review.start(
            guild_id=TERMINAL_GUILD_ID,
            guild_name=TERMINAL_GUILD_NAME,
            channel_id=channel,
            user_id=user_id,
            display_name=name,
            count=filters.count,
        )
    else:
        view = await quiz.start(
            guild_id=TERMINAL_GUILD_ID,
            guild_name=TERMINAL_GUILD_NAME,
            channel_id=channel,
            user_id=user_id,
            display_name=name,
            mode=SessionMode.SOLO,
            filters=filters,
        )
    assert view is not None
    session_id = view.session_id
    out.print(
        f"[bold]Quiz started[/bold]: {view.total} questions. "
        "Type a letter or an answer; empty line skips, 'quit' stops.\n"
    )
    while view is not None:
        out.print(render_question(view))
        shown = time.monotonic()
        line = await _read_line(source)
        if line is None or line.strip().lower() in ("quit", "exit", ":q"):
            out.print("[yellow]Stopping the quiz.[/yellow]")
            break
        if not line.strip():
            out.print("[dim]skipped[/dim]")
        else:
            if time.monotonic() - shown > view.time_limit:
                out.print(
                    "[yellow]⏱ Time was up: a late correct answer scores the minimum.[/yellow]"
                )
            outcome = await quiz.answer(
                session_id=session_id,
                question_id=view.question_id,
                user_id=user_id,
                display_name=name,
                given=to_answer(view, line),
            )
            out.print(render_outcome(outcome))
        view = await quiz.advance(session_id, view.position)
    summary = await quiz.finish(session_id)
    out.print(render_summary(summary))
    for defs in summary.achievements.values():
        for a in defs:
            out.print(f"{a.icon} Achievement unlocked: [bold]{a.name}[/bold] — {a.description}")
    member = await stats.member_stats(guild_id=TERMINAL_GUILD_ID, user_id=user_id)
    out.print(
        f"\n[bold]{name}[/bold]: level {member.level} · {member.points} points · "
        f"accuracy {member.accuracy:.0%} over {member.answered} answers · "
        f"best streak {member.best_streak} · daily streak {member.daily_streak}"
    )
    board = await stats.leaderboard(guild_id=TERMINAL_GUILD_ID, caller_id=user_id)
    out.print(render_leaderboard(board))
    return summary
