"""/review: a solo quiz of the questions due for you (spaced repetition)."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from quizbot.bot.client import QuizBot
from quizbot.bot.game import reply, respond_in_time


class ReviewCog(commands.Cog):
    """Spaced-repetition reviews."""

    def __init__(self, bot: QuizBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="review", description="Review the questions due for you (spaced repetition)"
    )
    @app_commands.describe(questions="At most this many questions, 1 to 50 (default 10)")
    @app_commands.guild_only()
    async def review(
        self,
        interaction: discord.Interaction[Any],
        questions: app_commands.Range[int, 1, 50] = 10,
    ) -> None:
        """Start a review quiz; the errors (nothing due, a quiz running) reach the user."""
        assert interaction.guild is not None and interaction.channel_id is not None
        self.bot.start_cooldown.check(interaction.user.id)
        with self.bot.start_cooldown.starting(interaction.user.id):
            view = await respond_in_time(
                interaction,
                self.bot.app.review.start(
                    guild_id=interaction.guild.id,
                    guild_name=interaction.guild.name,
                    channel_id=interaction.channel_id,
                    user_id=interaction.user.id,
                    display_name=interaction.user.display_name,
                    count=questions,
                ),
                ephemeral=False,
            )
        try:
            await reply(
                interaction,
                f"🧠 **{interaction.user.display_name}** is reviewing {view.total} "
                f"question{'s' if view.total != 1 else ''} due today.",
            )
        finally:
            # The review exists now: it runs even if Discord refused the announcement (an
            # expired interaction), rather than block the channel until the next restart.
            self.bot.game.launch(interaction.channel_id, view)


async def setup(bot: QuizBot) -> None:
    await bot.add_cog(ReviewCog(bot))
