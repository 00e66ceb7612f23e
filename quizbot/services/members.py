"""Member-level administration: leaderboard resets, deleting a user's data, achievements."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quizbot.cache import SCORES, QuizCache
from quizbot.models import GuildMember
from quizbot.rank_mirror import RankMirror
from quizbot.repositories import AchievementRepository, UserRepository
from quizbot.services.achievements import CATALOGUE, AchievementDef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AchievementStatus:
    """A catalogue entry and when the member earned it (None: not yet)."""

    achievement: AchievementDef
    earned_at: dt.datetime | None


class MemberService:
    """Use cases about members that are not part of playing."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: QuizCache,
        *,
        reads: async_sessionmaker[AsyncSession] | None = None,
        rank_mirror: RankMirror | None = None,
    ) -> None:
        self._sessions = sessionmaker
        # Read-only units of work (autocommit sessions in the app).
        self._reads = reads or sessionmaker
        self._cache = cache
        # Points going down (a reset, a deleted user) drop the mirrors they were in.
        self._rank_mirror = rank_mirror

    async def reset_leaderboard(self, guild_id: int) -> int:
        """Set every member's points in a guild back to zero (XP, levels and history stay).

        Args:
            guild_id: the guild whose all-time board is reset.

        Returns:
            How many members had points.
        """
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(GuildMember)
                .where(GuildMember.guild_id == guild_id, GuildMember.points != 0)
                .values(points=0)
                .returning(GuildMember.user_id)
            )
            count = len(result.all())
        await self._scores_went_down(guild_id)
        return count

    async def delete_user_data(self, user_id: int) -> bool:
        """Delete everything quizbot stores about a user, in every guild.

        Args:
            user_id: the Discord user.

        Returns:
            True when there was something to delete.
        """
        async with self._sessions() as session, session.begin():
            deleted = await UserRepository(session=session).delete(user_id=user_id)
        # Their rows left every guild's boards; which guilds is no longer known.
        await self._scores_went_down(None)
        return deleted

    async def _scores_went_down(self, guild_id: int | None) -> None:
        """After a committed reset (one guild) or deletion (None: every guild).

        The rank mirror goes first: points went down, which its `ZADD GT` writes cannot
        follow, and a read between the two steps would otherwise cache a rank from it
        under the new generation. Each step is tried even if the other fails, and a
        failure is logged, not raised: the change is committed, and telling the admin
        it failed would be wrong.
        """
        if self._rank_mirror is not None:
            try:
                await self._rank_mirror.drop(guild_id)
            except Exception:
                log.exception("could not drop the rank mirror of guild %s", guild_id or "*")
        try:
            if guild_id is None:
                await self._cache.clear()
            else:
                await self._cache.invalidate(SCORES, guild_id)
        except Exception:
            log.exception("could not invalidate the scores cache of guild %s", guild_id or "*")

    async def achievements(self, *, guild_id: int, user_id: int) -> list[AchievementStatus]:
        """The whole catalogue with what the member has earned, earned first (newest first).

        Args:
            guild_id: the guild.
            user_id: the member.

        Returns:
            One status per catalogue entry.
        """
        async with self._reads() as session:
            earned = await AchievementRepository(session=session).earned(
                user_id=user_id, guild_id=guild_id
            )
        when = {a.code: ua.earned_at for a, ua in earned}
        done = sorted(
            (AchievementStatus(d, when[d.code]) for d in CATALOGUE if d.code in when),
            key=lambda s: s.earned_at or dt.datetime.min.replace(tzinfo=dt.UTC),
            reverse=True,
        )
        todo = [AchievementStatus(d, None) for d in CATALOGUE if d.code not in when]
        return done + todo
