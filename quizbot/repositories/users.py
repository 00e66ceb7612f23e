"""Global user profiles."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from quizbot.models import User
from quizbot.repositories.base import Repository


class UserRepository(Repository[User]):
    """Users and their global totals."""

    model_type = User

    async def ensure(self, *, user_id: int, name: str) -> None:
        """Create the user if missing; refresh the name when it changed."""
        stmt = insert(User).values(user_id=user_id, name=name[:100])
        stmt = stmt.on_conflict_do_update(
            index_elements=[User.user_id],
            set_={"name": stmt.excluded.name},
            where=User.name.is_distinct_from(stmt.excluded.name),
        )
        await self.session.execute(stmt)

    async def delete(self, *, user_id: int) -> bool:
        """Delete a user and, by cascade, everything recorded about them.

        Returns:
            True when the user existed.
        """
        result = await self.session.execute(
            delete(User).where(User.user_id == user_id).returning(User.user_id)
        )
        return result.scalar_one_or_none() is not None
