"""/privacy delete-my-data."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from quizbot.bot.client import QuizBot
from quizbot.bot.components import confirmed


class PrivacyCog(commands.Cog):
    """What quizbot stores about you, and deleting it."""

    privacy = app_commands.Group(name="privacy", description="Your data in quizbot")

    def __init__(self, bot: QuizBot) -> None:
        self.bot = bot

    @privacy.command(name="delete-my-data", description="Delete all your quiz data, everywhere")
    async def delete_my_data(self, interaction: discord.Interaction[Any]) -> None:
        if await confirmed(
            interaction,
            "Delete your answers, points, streaks and achievements in every server? "
            "This cannot be undone.",
        ):
            # Their running quizzes go with their data: stop them here too.
            theirs = [
                s.id
                for s in await self.bot.app.quiz.running_sessions()
                if s.user_id == interaction.user.id
            ]
            deleted = await self.bot.members.delete_user_data(interaction.user.id)
            for session_id in theirs:
                await self.bot.game.stop(session_id)
            text = "Your data is deleted." if deleted else "There was nothing stored about you."
            await interaction.followup.send(text, ephemeral=True)


async def setup(bot: QuizBot) -> None:
    await bot.add_cog(PrivacyCog(bot))
