"""The bot: receives its resources from `runner.run_bot`, loads cogs in `setup_hook`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from quizbot.app import App
from quizbot.bot.components import DYNAMIC_ITEMS, page_components, submitted_answer
from quizbot.bot.cooldowns import StartCooldown
from quizbot.bot.embeds import CONTENT_MAX, NO_PINGS, clip, leaderboard_embed
from quizbot.bot.game import Game, reply, respond_in_time
from quizbot.config import Settings
from quizbot.errors import QuizbotError
from quizbot.services.members import MemberService
from quizbot.services.stats import Cursor, Period

log = logging.getLogger(__name__)

EXTENSIONS = (
    "quizbot.bot.cogs.quiz",
    "quizbot.bot.cogs.review",
    "quizbot.bot.cogs.stats",
    "quizbot.bot.cogs.admin",
    "quizbot.bot.cogs.privacy",
)


def intents() -> discord.Intents:
    """Only the guilds intent: slash commands and buttons need no privileged intent
    (no message content, no member list, no presences)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    return wanted


class QuizBot(commands.Bot):
    """quizbot on Discord."""

    def __init__(self, app: App, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            allowed_mentions=NO_PINGS,
            **kwargs,
        )
        self.app = app
        self.settings = settings
        self.game = Game(self)
        # One quiz start (/quiz start, /review) per member every few seconds.
        self.start_cooldown = StartCooldown()
        self.members = MemberService(
            app.sessionmaker,
            app.cache,
            reads=app.read_sessionmaker,
            rank_mirror=app.rank_mirror,
        )
        self._resumed = False
        # Set once the quizzes that were running before this process started are resumed.
        self.quizzes_resumed = asyncio.Event()

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        self.tree.error(self.on_app_command_error)
        guild_id = self.settings.discord_dev_guild_id
        if guild_id:
            # A guild sync is instant; global sync is `quizbot sync` (it is rate limited).
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), guild_id)

    async def on_ready(self) -> None:
        if self._resumed:
            return
        self._resumed = True
        try:
            resumed = await self.game.resume_all()
            log.info("ready as %s; resumed %d running quizzes", self.user, resumed)
        finally:
            self.quizzes_resumed.set()

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Answer forms are handled here, by custom id, so they survive a restart."""
        found = submitted_answer(interaction)
        if found is None:
            return
        session_id, question_id, text = found
        try:
            await self.game.answer_text(interaction, session_id, question_id, text)
        except Exception as exc:
            await self.on_component_error(interaction, exc)

    async def on_component_error(
        self, interaction: discord.Interaction[Any], error: Exception
    ) -> None:
        """Errors of buttons and forms reach the user too, as one short line."""
        if isinstance(error, QuizbotError):
            message = str(error)
        else:
            log.error("interaction %s failed", interaction.data, exc_info=error)
            message = "Something went wrong on our side; it has been logged."
        try:
            await reply(interaction, clip(f"⚠️ {message}", CONTENT_MAX), ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the user about an error", exc_info=True)

    async def close(self) -> None:
        await self.game.close()
        await super().close()

    async def on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Errors reach the user as one short line, and the log with a traceback."""
        original = getattr(error, "original", error)
        if isinstance(original, QuizbotError):
            message = str(original)
        elif isinstance(error, app_commands.CommandOnCooldown):
            message = f"Slow down: try again in {error.retry_after:.0f} s."
        elif isinstance(error, app_commands.MissingPermissions | app_commands.CheckFailure):
            message = "You need the Manage Server permission for that."
        elif isinstance(error, app_commands.NoPrivateMessage):
            message = "This command only works in a server."
        else:
            name = interaction.command.qualified_name if interaction.command else "?"
            log.error("command /%s failed", name, exc_info=original)
            message = "Something went wrong on our side; it has been logged."
        try:
            # An import error lists up to 20 problems: it must still fit in one message.
            await reply(interaction, clip(f"⚠️ {message}", CONTENT_MAX), ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the user about an error", exc_info=True)

    async def show_leaderboard(
        self,
        interaction: discord.Interaction[Any],
        *,
        scope: str,
        period: Period,
        after: Cursor | None = None,
        topic: str | None = None,
        edit: bool = False,
    ) -> None:
        """Render a leaderboard page (a new message, or the same message for page buttons)."""
        guild_id = interaction.guild_id if scope == "g" else None
        page = await respond_in_time(
            interaction,
            self.app.stats.leaderboard(
                guild_id=guild_id,
                caller_id=interaction.user.id,
                period=period,
                topic=topic,
                after=after,
            ),
            ephemeral=False,
            update=edit,
        )
        where = interaction.guild.name if scope == "g" and interaction.guild else "Global"
        title = f"🏆 {where} · {period.value}" + (f" · {topic}" if topic else "")
        embed = leaderboard_embed(page, title)
        # Topic boards are not paged: the topic would not fit in a button's custom id.
        components = page_components(
            scope, period, page.next_cursor if topic is None else None, first=after is None
        )
        if edit and not interaction.response.is_done():
            await interaction.response.edit_message(embed=embed, view=components)
        elif edit:
            await interaction.edit_original_response(embed=embed, view=components)
        else:
            await reply(interaction, embed=embed, view=components)
