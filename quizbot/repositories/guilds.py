"""Guilds and their settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from quizbot.errors import NotFoundError
from quizbot.models import Guild
from quizbot.repositories.base import Repository


class GuildRepository(Repository[Guild]):
    """Guild rows; settings are a JSON object validated by the service layer."""

    model_type = Guild

    async def ensure(self, *, guild_id: int, name: str) -> None:
        """Create the guild if missing; refresh the name when it changed."""
        stmt = insert(Guild).values(guild_id=guild_id, name=name[:100])
        stmt = stmt.on_conflict_do_update(
            index_elements=[Guild.guild_id],
            set_={"name": stmt.excluded.name},
            where=Guild.name.is_distinct_from(stmt.excluded.name),
        )
        await self.session.execute(stmt)

    async def settings(self, *, guild_id: int) -> dict[str, Any]:
        """The guild's stored settings ({} for an unknown guild)."""
        value = await self.session.scalar(select(Guild.settings).where(Guild.guild_id == guild_id))
        return dict(value or {})

    async def merge_settings(self, *, guild_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge `changes` into the stored settings atomically (JSONB `||`); returns the result.

        Raises:
            NotFoundError: unknown guild.
        """
        stmt = (
            update(Guild)
            .where(Guild.guild_id == guild_id)
            .values(settings=Guild.settings.op("||")(changes))
            .returning(Guild.settings)
        )
        value = (await self.session.execute(stmt)).scalar_one_or_none()
        if value is None:
            raise NotFoundError(f"guild {guild_id} not found")
        return dict(value)
