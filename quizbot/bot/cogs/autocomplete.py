"""Autocomplete for topic and category options, from the (cached) question pools."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands

if TYPE_CHECKING:
    from quizbot.bot.client import QuizBot

MAX_CHOICES = 25


async def _topics(interaction: discord.Interaction[Any]) -> tuple[tuple[str, str, int], ...]:
    bot = cast("QuizBot", interaction.client)
    result: tuple[tuple[str, str, int], ...] = await bot.app.quiz.topics(interaction.guild_id or 0)
    return result


async def topic_autocomplete(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """Topics containing what was typed."""
    counts: dict[str, int] = {}
    for topic, _category, n in await _topics(interaction):
        counts[topic] = counts.get(topic, 0) + n
    typed = current.casefold()
    return [
        app_commands.Choice(name=f"{t} ({n})"[:100], value=t[:100])
        for t, n in counts.items()
        if typed in t.casefold()
    ][:MAX_CHOICES]


async def category_autocomplete(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """Categories (of the chosen topic, when one is chosen) containing what was typed."""
    topic = getattr(interaction.namespace, "topic", None)
    typed = current.casefold()
    seen: dict[str, int] = {}
    for t, category, n in await _topics(interaction):
        if topic and t.casefold() != str(topic).casefold():
            continue
        seen[category] = seen.get(category, 0) + n
    return [
        app_commands.Choice(name=f"{c} ({n})"[:100], value=c[:100])
        for c, n in seen.items()
        if typed in c.casefold()
    ][:MAX_CHOICES]
