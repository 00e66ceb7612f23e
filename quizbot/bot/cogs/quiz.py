"""/quiz start and /quiz stop."""

from __future__ import annotations

from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from quizbot.bot.client import QuizBot
from quizbot.bot.cogs.autocomplete import category_autocomplete, topic_autocomplete
from quizbot.bot.embeds import summary_embed
from quizbot.bot.game import reply, respond_in_time
from quizbot.models import SessionMode
from quizbot.services.quiz import QuizFilters


class QuizCog(commands.Cog):
    """Playing quizzes."""

    quiz = app_commands.Group(name="quiz", description="Play a quiz", guild_only=True)

    def __init__(self, bot: QuizBot) -> None:
        self.bot = bot

    @quiz.command(name="start", description="Start a quiz in this channel")
    @app_commands.describe(
        topic="Subject, e.g. Physics (default: any)",
        category="Part of the topic, e.g. Mechanics (default: any)",
        difficulty="How hard (default: mixed)",
        questions="How many questions, 1 to 50 (default 10)",
        mode="solo: just you · channel: everyone here may answer (default solo)",
    )
    @app_commands.autocomplete(topic=topic_autocomplete, category=category_autocomplete)
    async def start(
        self,
        interaction: discord.Interaction[Any],
        topic: str | None = None,
        category: str | None = None,
        difficulty: Literal["easy", "medium", "hard", "mixed"] = "mixed",
        questions: app_commands.Range[int, 1, 50] = 10,
        mode: Literal["solo", "channel"] = "solo",
    ) -> None:
        assert interaction.guild is not None and interaction.channel_id is not None
        self.bot.start_cooldown.check(interaction.user.id)
        # The questions are channel messages (unlike this reply): without these permissions
        # the quiz would start and then say nothing at all.
        mine = interaction.app_permissions
        if not (mine.view_channel and mine.send_messages and mine.embed_links):
            await reply(
                interaction,
                "⚠️ I can't post questions here: I need the View Channel, Send Messages and "
                "Embed Links permissions in this channel.",
                ephemeral=True,
            )
            return
        filters = QuizFilters(
            topic=topic, category=category, difficulty=difficulty, count=questions
        )
        with self.bot.start_cooldown.starting(interaction.user.id):
            view = await respond_in_time(
                interaction,
                self.bot.app.quiz.start(
                    guild_id=interaction.guild.id,
                    guild_name=interaction.guild.name,
                    channel_id=interaction.channel_id,
                    user_id=interaction.user.id,
                    display_name=interaction.user.display_name,
                    mode=SessionMode(mode),
                    filters=filters,
                ),
                ephemeral=False,
            )
        who = "everyone here can answer" if mode == "channel" else "solo"
        try:
            await reply(
                interaction,
                f"🎯 **{interaction.user.display_name}** started a quiz: {view.total} questions"
                f" · {topic or 'any topic'} · {difficulty} · {who}.",
            )
        finally:
            # The quiz exists now: it runs even if Discord refused the announcement (an
            # expired interaction), rather than block the channel until the next restart.
            self.bot.game.launch(interaction.channel_id, view)

    @quiz.command(name="stop", description="Stop your quiz (or the channel quiz) here")
    async def stop(self, interaction: discord.Interaction[Any]) -> None:
        assert interaction.channel_id is not None
        summary = await respond_in_time(
            interaction,
            self.bot.app.quiz.stop(channel_id=interaction.channel_id, user_id=interaction.user.id),
            ephemeral=False,
        )
        if summary is None:
            await reply(interaction, "No quiz of yours is running here.", ephemeral=True)
            return
        try:
            await reply(interaction, embed=summary_embed(summary))
        finally:
            await self.bot.game.stop(summary.session_id)


async def setup(bot: QuizBot) -> None:
    await bot.add_cog(QuizCog(bot))
