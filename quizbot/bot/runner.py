"""Starting the bot: resources are created here and handed to the Bot (discord.py's
`advanced_startup` pattern), and released when it stops."""

from __future__ import annotations

import logging

import aiohttp
import discord

from quizbot.app import App
from quizbot.bot.client import QuizBot
from quizbot.config import Settings
from quizbot.runtime import tune_garbage_collector

log = logging.getLogger(__name__)


async def run_bot(settings: Settings, url: str) -> int:
    """Run the bot until it is stopped; returns the exit code."""
    assert settings.discord_token is not None
    app = App.create(settings, url)
    try:
        await app.bootstrap(warm=True)
        async with QuizBot(app, settings) as bot:
            tune_garbage_collector()
            await bot.start(settings.discord_token.get_secret_value())
    except discord.LoginFailure:
        log.error("Discord refused the token: check DISCORD_TOKEN")
        return 1
    except (aiohttp.ClientConnectionError, OSError) as exc:
        # No traceback: this is the network, not a bug (offline, DNS, firewall).
        log.error("cannot reach Discord (%s): check the network and try again", exc)
        return 1
    finally:
        await app.close()
    return 0


async def sync_commands(settings: Settings, url: str, guild_id: int | None) -> int:
    """Publish the slash commands: to one guild (instant) or globally (`quizbot sync`)."""
    assert settings.discord_token is not None
    app = App.create(settings, url)
    try:
        async with QuizBot(app, settings) as bot:
            await bot.login(settings.discord_token.get_secret_value())
            if guild_id:
                guild = discord.Object(id=guild_id)
                bot.tree.copy_global_to(guild=guild)
                synced = await bot.tree.sync(guild=guild)
            else:
                synced = await bot.tree.sync()
            log.info(
                "synced %d commands %s", len(synced), f"to {guild_id}" if guild_id else "globally"
            )
    finally:
        await app.close()
    return 0
