"""Admin commands (Manage Server): the server's own questions and its quiz settings.

Admins only ever touch their own guild: every call passes `interaction.guild_id`.
"""

from __future__ import annotations

import io
import json
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from quizbot.bot.client import QuizBot
from quizbot.bot.embeds import BLUE, clip
from quizbot.bot.game import reply, respond_in_time
from quizbot.errors import InvalidInputError
from quizbot.services.guild_settings import GuildSettings
from quizbot.services.question_formats import EXPORT_EXTENSIONS, MAX_IMPORT_BYTES

ADMIN = discord.Permissions(manage_guild=True)


class AddQuestionModal(discord.ui.Modal, title="Add a question"):
    """The fields of a new question; difficulty and kind come from the command's options."""

    prompt: discord.ui.TextInput[AddQuestionModal] = discord.ui.TextInput(
        label="Question", style=discord.TextStyle.paragraph, max_length=1000
    )
    answer: discord.ui.TextInput[AddQuestionModal] = discord.ui.TextInput(
        label="Correct answer (True/False for true-false)", max_length=200
    )
    wrong: discord.ui.TextInput[AddQuestionModal] = discord.ui.TextInput(
        label="Wrong choices, one per line (multiple choice)",
        style=discord.TextStyle.paragraph,
        required=False,
        max_length=800,
    )
    topic: discord.ui.TextInput[AddQuestionModal] = discord.ui.TextInput(
        label="Topic / category, e.g. Physics / Optics", max_length=130
    )
    explanation: discord.ui.TextInput[AddQuestionModal] = discord.ui.TextInput(
        label="Explanation shown after answering",
        style=discord.TextStyle.paragraph,
        max_length=2000,
    )

    def __init__(self, bot: QuizBot, difficulty: str, kind: str) -> None:
        super().__init__()
        self.bot, self.difficulty, self.kind = bot, difficulty, kind

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        assert interaction.guild_id is not None
        topic, _, category = self.topic.value.partition("/")
        wrong = [w.strip() for w in self.wrong.value.splitlines() if w.strip()]
        question: dict[str, Any] = {
            "topic": topic.strip(),
            "category": category.strip() or "General",
            "difficulty": self.difficulty,
            "kind": self.kind,
            "prompt": self.prompt.value.strip(),
            "answer": self.answer.value.strip(),
            "explanation": self.explanation.value.strip(),
        }
        if self.kind == "multiple_choice":
            question["choices"] = [question["answer"], *wrong]
        # The same validation as a file import: one code path, one set of messages.
        document = json.dumps({"questions": [question]}).encode()
        try:
            report = await self.bot.app.bank.import_file(
                document,
                filename="question.json",
                guild_id=interaction.guild_id,
                created_by=interaction.user.id,
                fmt="quizbot-json",
            )
        except InvalidInputError as exc:
            await reply(interaction, f"⚠️ {clip(str(exc), 1900)}", ephemeral=True)
            return
        text = "✅ Question added." if report.inserted else "This server already has that question."
        await reply(interaction, text, ephemeral=True)


class AdminCog(commands.Cog):
    """Question bank and settings of a server."""

    questions = app_commands.Group(
        name="questions",
        description="Manage this server's own questions",
        guild_only=True,
        default_permissions=ADMIN,
    )

    def __init__(self, bot: QuizBot) -> None:
        self.bot = bot

    @questions.command(name="add", description="Add one question with a form")
    @app_commands.describe(difficulty="How hard", kind="How it is answered")
    async def add(
        self,
        interaction: discord.Interaction[Any],
        difficulty: Literal["easy", "medium", "hard"],
        kind: Literal["multiple_choice", "true_false", "free_text"],
    ) -> None:
        await interaction.response.send_modal(AddQuestionModal(self.bot, difficulty, kind))

    @questions.command(name="import", description="Import questions from a file (all or nothing)")
    @app_commands.describe(
        file="quizbot JSON/YAML/CSV, Open Trivia DB JSON, or a Red trivia YAML list",
        format="default: detected from the file",
    )
    async def import_(
        self,
        interaction: discord.Interaction[Any],
        file: discord.Attachment,
        format: Literal["quizbot-json", "quizbot-yaml", "quizbot-csv", "opentdb", "red-trivia"]
        | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        if file.size > MAX_IMPORT_BYTES:
            await reply(
                interaction,
                f"⚠️ {file.filename} is {file.size / 1024 / 1024:.1f} MiB; the limit is "
                f"{MAX_IMPORT_BYTES // 1024 // 1024} MiB.",
                ephemeral=True,
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await file.read()
        report = await self.bot.app.bank.import_file(
            data,
            filename=file.filename,
            guild_id=interaction.guild_id,
            created_by=interaction.user.id,
            fmt=format,
        )
        await reply(
            interaction,
            f"✅ Imported **{report.inserted}** questions from {clip(file.filename, 100)} "
            f"({report.fmt}); {report.skipped_duplicates} already here were skipped.",
        )

    @questions.command(name="export", description="Download this server's own questions")
    async def export(
        self,
        interaction: discord.Interaction[Any],
        format: Literal["quizbot-json", "quizbot-yaml", "quizbot-csv"] = "quizbot-json",
    ) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await self.bot.app.bank.export(guild_id=interaction.guild_id, fmt=format)
        name = f"questions-{interaction.guild_id}.{EXPORT_EXTENSIONS[format]}"
        await reply(interaction, "Here they are.", file=discord.File(io.BytesIO(data), name))

    @questions.command(name="disable", description="Stop asking one of this server's questions")
    async def disable(self, interaction: discord.Interaction[Any], question_id: int) -> None:
        await self._set_enabled(interaction, question_id, False)

    @questions.command(name="enable", description="Ask a disabled question again")
    async def enable(self, interaction: discord.Interaction[Any], question_id: int) -> None:
        await self._set_enabled(interaction, question_id, True)

    async def _set_enabled(
        self, interaction: discord.Interaction[Any], question_id: int, enabled: bool
    ) -> None:
        assert interaction.guild_id is not None
        await respond_in_time(
            interaction,
            self.bot.app.bank.set_enabled(
                guild_id=interaction.guild_id, question_id=question_id, enabled=enabled
            ),
        )
        await reply(
            interaction,
            f"Question {question_id} {'enabled' if enabled else 'disabled'}.",
            ephemeral=True,
        )

    @app_commands.command(name="quizconfig", description="Show or change this server's settings")
    @app_commands.describe(
        timer="Seconds per question (10 to 120)",
        streak_bonus="Extra points per answer in a streak, e.g. 0.1 = +10%",
        streak_cap="Largest streak bonus, e.g. 0.5 = +50%",
        speed_bonus="Faster correct answers score more",
        allow_channel="Allow quizzes in this channel (once any is allowed, only those are)",
        disallow_channel="Remove this channel from the allowed ones",
        timezone="IANA time zone for daily streaks, e.g. Europe/Paris",
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def quizconfig(
        self,
        interaction: discord.Interaction[Any],
        timer: app_commands.Range[int, 10, 120] | None = None,
        streak_bonus: app_commands.Range[float, 0.0, 1.0] | None = None,
        streak_cap: app_commands.Range[float, 0.0, 5.0] | None = None,
        speed_bonus: bool | None = None,
        allow_channel: discord.TextChannel | None = None,
        disallow_channel: discord.TextChannel | None = None,
        timezone: str | None = None,
    ) -> None:
        guild = interaction.guild
        assert guild is not None
        service = self.bot.app.guild_settings

        async def apply() -> GuildSettings:
            current = await service.get(guild.id)
            changes: dict[str, Any] = {}
            if timer is not None:
                changes["timer"] = timer
            scoring: dict[str, Any] = {}
            if streak_bonus is not None:
                scoring["streak_bonus_per_answer"] = streak_bonus
            if streak_cap is not None:
                scoring["streak_bonus_cap"] = streak_cap
            if speed_bonus is not None:
                scoring["speed_bonus"] = speed_bonus
            if scoring:
                changes["scoring"] = scoring
            channels = list(current.channels)
            if allow_channel is not None and allow_channel.id not in channels:
                channels.append(allow_channel.id)
            if disallow_channel is not None and disallow_channel.id in channels:
                channels.remove(disallow_channel.id)
            if channels != list(current.channels):
                changes["channels"] = channels
            if timezone is not None:
                changes["timezone"] = timezone
            if not changes:
                return current
            return await service.update(guild.id, guild.name, changes)

        # Reading (and changing) the settings may be slow: acknowledge in time.
        settings = await respond_in_time(interaction, apply())
        embed = discord.Embed(title="⚙️ Quiz settings", colour=BLUE)
        embed.add_field(name="Timer", value=f"{settings.timer} s")
        scoring_now = settings.scoring.to_settings()
        embed.add_field(
            name="Scoring", value=clip(", ".join(f"{k}: {v}" for k, v in scoring_now.items()), 1024)
        )
        embed.add_field(
            name="Channels",
            value=", ".join(f"<#{c}>" for c in settings.channels) or "all channels",
        )
        embed.add_field(name="Time zone", value=settings.timezone)
        await reply(interaction, embed=embed, ephemeral=True)


async def setup(bot: QuizBot) -> None:
    await bot.add_cog(AdminCog(bot))
