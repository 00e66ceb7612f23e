"""A guild's quiz settings: timer, scoring, allowed channels, timezone."""

from __future__ import annotations

import datetime as dt
import functools
import json
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quizbot.cache import SETTINGS, QuizCache
from quizbot.errors import InvalidInputError
from quizbot.repositories import GuildRepository
from quizbot.services.scoring import ScoringConfig

MIN_TIMER, MAX_TIMER, DEFAULT_TIMER = 10, 120, 30
_KEYS = {"timer", "scoring", "channels", "timezone"}


@dataclass(frozen=True)
class GuildSettings:
    """Validated settings; defaults for anything a guild never set."""

    timer: int = DEFAULT_TIMER
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    # Channels where quizzes may run; empty means everywhere.
    channels: tuple[int, ...] = ()
    timezone: str = "UTC"

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> GuildSettings:
        """Validate stored or submitted settings.

        Raises:
            InvalidInputError: a value is out of range; the message names the key.
        """
        unknown = set(raw) - _KEYS
        if unknown:
            raise InvalidInputError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        timer = raw.get("timer", DEFAULT_TIMER)
        if (
            not isinstance(timer, int)
            or isinstance(timer, bool)
            or not (MIN_TIMER <= timer <= MAX_TIMER)
        ):
            raise InvalidInputError(
                f"timer: must be a whole number of seconds from {MIN_TIMER} to {MAX_TIMER}"
            )
        channels = raw.get("channels", [])
        if not isinstance(channels, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in channels
        ):
            raise InvalidInputError("channels: must be a list of channel ids")
        tz = raw.get("timezone", "UTC")
        try:
            zoneinfo.ZoneInfo(str(tz))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidInputError(
                f"timezone: {tz!r} is not an IANA time zone such as Europe/Paris"
            ) from None
        return cls(
            timer=timer,
            scoring=ScoringConfig.from_settings(raw.get("scoring", {})),
            channels=tuple(channels),
            timezone=str(tz),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in `guilds.settings`."""
        return {
            "timer": self.timer,
            "scoring": self.scoring.to_settings(),
            "channels": list(self.channels),
            "timezone": self.timezone,
        }

    def today(self, now: dt.datetime | None = None) -> dt.date:
        """The current date in the guild's timezone (daily streaks roll over at its midnight)."""
        moment = now or dt.datetime.now(dt.UTC)
        return moment.astimezone(zoneinfo.ZoneInfo(self.timezone)).date()


def stored_settings(raw: Mapping[str, Any] | None) -> GuildSettings:
    """The settings a `guilds.settings` value stands for (defaults for NULL or an unknown guild)."""
    try:
        return GuildSettings.from_json(raw or {})
    except InvalidInputError:
        # Settings written by an older version that no longer validate: defaults
        # keep the guild playable; /quizconfig shows and rewrites them.
        return GuildSettings()


@functools.lru_cache(maxsize=1024)
def stored_settings_text(raw: str | None) -> GuildSettings:
    """`stored_settings` of the column read as text (`settings::text`), memoised.

    The answer path reads its guild's settings with every batch, in the same statement
    (not through the cache: see `answer_batch`). Validating them again each time was
    about 2 % of the bot's CPU under load; the settings are immutable, so one parsed
    value per distinct text serves every batch.
    """
    return stored_settings(json.loads(raw) if raw else None)


class GuildSettingsService:
    """Read (cached) and change a guild's settings."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: QuizCache,
        *,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._sessions = sessionmaker
        # Read-only units of work (autocommit sessions in the app).
        self._reads = reads or sessionmaker
        self._cache = cache
        self._cached_load = cache.memoize("settings", self._load, ttl=600)

    async def _load(self, guild_id: int, _generation: int) -> GuildSettings:
        async with self._reads() as session:
            raw = await GuildRepository(session=session).settings(guild_id=guild_id)
        return stored_settings(raw)

    async def get(self, guild_id: int) -> GuildSettings:
        """The guild's settings (defaults for an unknown guild).

        Args:
            guild_id: the Discord guild id.

        Returns:
            Validated settings, from the cache when fresh.
        """
        generation = await self._cache.generation(SETTINGS, guild_id)
        return await self._cached_load(guild_id, generation)

    async def update(
        self, guild_id: int, guild_name: str, changes: Mapping[str, Any]
    ) -> GuildSettings:
        """Validate and store changes to a guild's settings.

        Args:
            guild_id: the Discord guild id.
            guild_name: used when the guild has no row yet.
            changes: settings keys to replace (`scoring` is merged key by key).

        Returns:
            The settings now in force.

        Raises:
            InvalidInputError: a value is invalid; nothing is stored.
        """
        current = (await self.get(guild_id)).to_json()
        merged = {**current, **changes}
        if "scoring" in changes:
            merged["scoring"] = {**current["scoring"], **changes["scoring"]}
        validated = GuildSettings.from_json(merged)
        async with self._sessions() as session, session.begin():
            repo = GuildRepository(session=session)
            await repo.ensure(guild_id=guild_id, name=guild_name)
            await repo.merge_settings(guild_id=guild_id, changes=validated.to_json())
        await self._cache.invalidate(SETTINGS, guild_id)
        return validated
