"""Embeds and text for Discord, always within Discord's documented limits."""

from __future__ import annotations

import datetime as dt

import discord

from quizbot.models import QuestionKind
from quizbot.repositories import MemberStats
from quizbot.services.members import AchievementStatus
from quizbot.services.quiz import AnswerOutcome, PlayerResult, QuestionView, QuizSummary
from quizbot.services.stats import LeaderboardPage

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
BUTTON_LABEL_MAX = 80

LETTERS = "ABCDEFGHIJ"
BLUE, GREEN, RED, GOLD = 0x5865F2, 0x57F287, 0xED4245, 0xFEE75C

# User-supplied text is shown, never allowed to ping anyone.
NO_PINGS = discord.AllowedMentions.none()


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def question_embed(view: QuestionView, *, ends_at: dt.datetime | None = None) -> discord.Embed:
    """The question message: prompt, lettered choices, and a live countdown."""
    embed = discord.Embed(
        title=clip(f"Question {view.number}/{view.total} · {view.topic}", TITLE_MAX),
        description=clip(view.prompt, DESCRIPTION_MAX - 600),
        colour=BLUE,
    )
    if view.kind is QuestionKind.MULTIPLE_CHOICE:
        lines = [f"**{LETTERS[i]}** {clip(c, 100)}" for i, c in enumerate(view.choices)]
        embed.description = f"{embed.description}\n\n" + "\n".join(lines)
    elif view.kind is QuestionKind.FREE_TEXT:
        embed.description = f"{embed.description}\n\n*Press **Answer** and type it.*"
    if ends_at is not None:
        # Discord renders <t:...:R> as a live "in 25 seconds" on every client.
        embed.add_field(name="Time", value=f"⏱ ends <t:{int(ends_at.timestamp())}:R>")
    embed.set_footer(
        text=clip(f"{view.difficulty.value} · {view.category} · {view.mode.value} quiz", FOOTER_MAX)
    )
    return embed


def reveal_embed(
    view: QuestionView,
    answer: str,
    explanation: str,
    results: list[PlayerResult],
) -> discord.Embed:
    """What replaces the question when time is up: the answer, why, and who got it."""
    embed = discord.Embed(
        title=clip(f"Question {view.number}/{view.total} · answer", TITLE_MAX),
        description=clip(view.prompt, 1500),
        colour=GREEN,
    )
    embed.add_field(name="Answer", value=clip(answer, FIELD_VALUE_MAX), inline=False)
    if explanation:
        embed.add_field(name="Why", value=clip(explanation, FIELD_VALUE_MAX), inline=False)
    right = [r for r in results if r.correct]
    if results:
        names = ", ".join(r.display_name for r in right[:20]) or "nobody"
        more = f" and {len(right) - 20} more" if len(right) > 20 else ""
        embed.add_field(
            name=f"Correct: {len(right)}/{len(results)}",
            value=clip(names + more, FIELD_VALUE_MAX),
            inline=False,
        )
        if right:
            embed.add_field(
                name="Fastest", value=clip(f"⚡ {right[0].display_name}", FIELD_VALUE_MAX)
            )
    else:
        embed.add_field(name="Correct", value="nobody answered", inline=False)
    return embed


def outcome_text(outcome: AnswerOutcome) -> str:
    """The ephemeral reply to whoever answered."""
    if not outcome.recorded:
        return {
            "duplicate": "You already answered this question: only your first answer counts.",
            "not_current": "This question is over; answer the current one.",
            "finished": "This quiz has ended.",
            "not_player": "This is someone else's solo quiz: start your own with /quiz start.",
        }.get(outcome.reason or "", "That answer was not counted.")
    if outcome.correct:
        text = f"✅ **Correct!** +{outcome.points} points, +{outcome.xp} XP"
        if outcome.streak > 1:
            text += f" · 🔥 streak {outcome.streak}"
    else:
        text = f"❌ **Not quite.** The answer is **{clip(outcome.canonical_answer, 200)}**."
    if outcome.explanation:
        text += f"\n{clip(outcome.explanation, 1200)}"
    if outcome.level_up:
        text += f"\n⬆️ Level up! You are now level {outcome.level}."
    for a in outcome.achievements:
        text += f"\n{a.icon} Achievement unlocked: **{a.name}**"
    return clip(text, CONTENT_MAX)


def summary_embed(summary: QuizSummary) -> discord.Embed:
    """The end of a quiz."""
    title = "Quiz over" if summary.status.value == "finished" else "Quiz stopped"
    embed = discord.Embed(
        title=f"{title} · {summary.asked}/{summary.total_questions} questions", colour=GOLD
    )
    if not summary.players:
        embed.description = "Nobody answered."
    medals = ["🥇", "🥈", "🥉"]
    lines = []
    for i, p in enumerate(summary.players[:15]):
        mark = medals[i] if i < 3 else f"{i + 1}."
        lines.append(
            f"{mark} **{clip(p.display_name, 40)}** {p.points} pts · {p.correct}/{p.answered}"
        )
    if lines:
        embed.description = "\n".join(lines)
    for user_id, defs in list(summary.achievements.items())[:10]:
        who = next((p.display_name for p in summary.players if p.user_id == user_id), "")
        embed.add_field(
            name=clip(f"🏅 {who}", FIELD_NAME_MAX),
            value=clip(", ".join(f"{d.icon} {d.name}" for d in defs), FIELD_VALUE_MAX),
            inline=False,
        )
    return embed


def stats_embed(name: str, stats: MemberStats) -> discord.Embed:
    """/stats."""
    embed = discord.Embed(title=clip(f"📊 {name}", TITLE_MAX), colour=BLUE)
    rank = f"#{stats.rank} of {stats.members}" if stats.rank else "not ranked yet"
    embed.add_field(name="Level", value=f"{stats.level} ({stats.xp} XP)")
    embed.add_field(name="Points", value=f"{stats.points} · {rank}")
    embed.add_field(name="Accuracy", value=f"{stats.accuracy:.0%} of {stats.answered} answers")
    embed.add_field(name="Quizzes", value=str(stats.quizzes_taken))
    embed.add_field(name="Answer streak", value=f"{stats.answer_streak} (best {stats.best_streak})")
    embed.add_field(
        name="Daily streak", value=f"{stats.daily_streak} (best {stats.best_daily_streak})"
    )
    if stats.topics:
        lines = [
            f"{clip(t.topic, 40)}: {t.accuracy:.0%} of {t.answered}" for t in stats.topics[:10]
        ]
        embed.add_field(
            name="By topic", value=clip("\n".join(lines), FIELD_VALUE_MAX), inline=False
        )
    if stats.recent_achievements:
        lines = [f"{a.icon} {a.name}" for a in stats.recent_achievements]
        embed.add_field(
            name="Recent achievements", value=clip("\n".join(lines), FIELD_VALUE_MAX), inline=False
        )
    if not stats.is_member:
        embed.description = "No answers yet: try `/quiz start`!"
    return embed


def leaderboard_embed(page: LeaderboardPage, title: str) -> discord.Embed:
    """/leaderboard: a page and the caller's own line."""
    embed = discord.Embed(title=clip(title, TITLE_MAX), colour=GOLD)
    lines = [f"**{e.rank}.** {clip(e.name, 40)} · {e.points}" for e in page.entries]
    embed.description = "\n".join(lines) or "No points yet: be the first with `/quiz start`!"
    if page.me is not None:
        embed.add_field(name="You", value=f"#{page.me.rank} · {page.me.points} points")
    if page.refresh_s:
        embed.set_footer(text=f"Updated every {_duration(page.refresh_s)}.")
    return embed


def _duration(seconds: int) -> str:
    """60 -> "minute", 120 -> "2 minutes", 90 -> "90 seconds"."""
    if seconds % 60:
        return "second" if seconds == 1 else f"{seconds} seconds"
    minutes = seconds // 60
    return "minute" if minutes == 1 else f"{minutes} minutes"


def achievements_embed(name: str, statuses: list[AchievementStatus]) -> discord.Embed:
    """/achievements: earned ones first, then what is left to earn."""
    earned = [s for s in statuses if s.earned_at is not None]
    embed = discord.Embed(
        title=clip(f"🏅 {name}: {len(earned)}/{len(statuses)} achievements", TITLE_MAX),
        colour=GOLD,
    )
    lines = []
    for s in statuses:
        a = s.achievement
        mark = a.icon if s.earned_at else "🔒"
        lines.append(f"{mark} **{a.name}**: {a.description}")
    embed.description = clip("\n".join(lines), DESCRIPTION_MAX)
    return embed
