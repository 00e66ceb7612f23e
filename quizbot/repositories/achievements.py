"""The achievements catalogue and awards."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from quizbot.models import Achievement, UserAchievement
from quizbot.repositories.base import Repository


class AchievementRepository(Repository[Achievement]):
    """Catalogue upserts and once-only awards."""

    model_type = Achievement

    async def sync_catalogue(self, entries: Iterable[Achievement]) -> None:
        """Upsert the catalogue defined in code (one statement)."""
        rows = [
            {
                "code": e.code,
                "name": e.name,
                "description": e.description,
                "icon": e.icon,
                "xp_reward": e.xp_reward,
            }
            for e in entries
        ]
        if not rows:
            return
        stmt = insert(Achievement).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Achievement.code],
            set_={c: stmt.excluded[c] for c in ("name", "description", "icon", "xp_reward")},
        )
        await self.session.execute(stmt)

    async def award(self, *, user_id: int, guild_id: int, codes: Sequence[str]) -> list[str]:
        """Award achievements; the primary key makes each award happen once.

        Returns:
            The codes newly awarded by this call (already-held ones are left out),
            so two concurrent calls never both report the same award.
        """
        if not codes:
            return []
        stmt = (
            insert(UserAchievement)
            .values([{"user_id": user_id, "guild_id": guild_id, "code": c} for c in codes])
            .on_conflict_do_nothing()
            .returning(UserAchievement.code)
        )
        return list((await self.session.scalars(stmt)).all())

    async def earned(
        self, *, user_id: int, guild_id: int
    ) -> list[tuple[Achievement, UserAchievement]]:
        """A member's achievements, newest first."""
        stmt = (
            select(Achievement, UserAchievement)
            .join(UserAchievement, UserAchievement.code == Achievement.code)
            .where(UserAchievement.user_id == user_id, UserAchievement.guild_id == guild_id)
            .order_by(UserAchievement.earned_at.desc())
        )
        return [(a, ua) for a, ua in (await self.orm.execute(stmt))]
