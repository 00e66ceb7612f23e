"""/stats, /leaderboard, /achievements, /topics."""

from __future__ import annotations

from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from quizbot.bot.client import QuizBot
from quizbot.bot.cogs.autocomplete import topic_autocomplete
from quizbot.bot.components import confirmed
from quizbot.bot.embeds import BLUE, achievements_embed, clip, stats_embed
from quizbot.bot.game import reply, respond_in_time
from quizbot.services.stats import Period


class StatsCog(commands.Cog):
    """Progress and rankings."""

    leaderboard = app_commands.Group(
        name="leaderboard", description="Rankings of this server or of everyone", guild_only=True
    )

    def __init__(self, bot: QuizBot) -> None:
        self.bot = bot

    @app_commands.command(name="stats", description="Your quiz stats (or another member's)")
    @app_commands.describe(member="Whose stats (default: yours)")
    @app_commands.guild_only()
    async def stats(
        self, interaction: discord.Interaction[Any], member: discord.Member | None = None
    ) -> None:
        assert interaction.guild_id is not None
        who = member or interaction.user
        stats = await respond_in_time(
            interaction,
            self.bot.app.stats.member_stats(guild_id=interaction.guild_id, user_id=who.id),
            ephemeral=False,
        )
        await reply(interaction, embed=stats_embed(who.display_name, stats))

    @leaderboard.command(name="show", description="Top players, with your own rank")
    @app_commands.describe(
        period="all time, today, this week or this month (UTC)",
        scope="this server or everyone",
        topic="only points earned in this topic",
    )
    @app_commands.autocomplete(topic=topic_autocomplete)
    async def show(
        self,
        interaction: discord.Interaction[Any],
        period: Literal["all", "day", "week", "month"] = "all",
        scope: Literal["server", "global"] = "server",
        topic: str | None = None,
    ) -> None:
        await self.bot.show_leaderboard(
            interaction,
            scope="g" if scope == "server" else "x",
            period=Period(period),
            topic=topic,
        )

    @leaderboard.command(name="reset", description="Reset this server's points (Manage Server)")
    async def reset(self, interaction: discord.Interaction[Any]) -> None:
        assert interaction.guild_id is not None
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        if await confirmed(
            interaction,
            "Reset every member's points in this server to 0? XP, levels and history stay.",
        ):
            count = await self.bot.members.reset_leaderboard(interaction.guild_id)
            await interaction.followup.send(f"Leaderboard reset ({count} members).", ephemeral=True)

    @app_commands.command(name="achievements", description="Achievements earned and to earn")
    @app_commands.describe(member="Whose achievements (default: yours)")
    @app_commands.guild_only()
    async def achievements(
        self, interaction: discord.Interaction[Any], member: discord.Member | None = None
    ) -> None:
        assert interaction.guild_id is not None
        who = member or interaction.user
        statuses = await respond_in_time(
            interaction,
            self.bot.members.achievements(guild_id=interaction.guild_id, user_id=who.id),
            ephemeral=False,
        )
        await reply(interaction, embed=achievements_embed(who.display_name, statuses))

    @app_commands.command(name="topics", description="Topics and categories you can play")
    @app_commands.guild_only()
    async def topics(self, interaction: discord.Interaction[Any]) -> None:
        rows = await respond_in_time(
            interaction, self.bot.app.quiz.topics(interaction.guild_id or 0), ephemeral=False
        )
        by_topic: dict[str, list[str]] = {}
        totals: dict[str, int] = {}
        for topic, category, n in rows:
            by_topic.setdefault(topic, []).append(category)
            totals[topic] = totals.get(topic, 0) + n
        embed = discord.Embed(title="📚 Topics", colour=BLUE)
        for topic in list(by_topic)[:25]:
            embed.add_field(
                name=clip(f"{topic} ({totals[topic]})", 256),
                value=clip(", ".join(by_topic[topic]), 1024),
                inline=False,
            )
        if not rows:
            embed.description = "No questions yet: an admin can add some with /questions."
        await reply(interaction, embed=embed)


async def setup(bot: QuizBot) -> None:
    await bot.add_cog(StatsCog(bot))
