"""What every repository shares: a model type, a keyword-only session, error translation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quizbot.errors import ConflictError, NotFoundError
from quizbot.models import Base

ModelT = TypeVar("ModelT", bound=Base)


@contextmanager
def translate_integrity_errors(
    messages: dict[str, type[ConflictError] | tuple[type[ConflictError], str]] | None = None,
) -> Iterator[None]:
    """Turn an IntegrityError into a ConflictError (or the subclass mapped to its constraint).

    Args:
        messages: constraint name → exception class, or (class, user-facing message).
    """
    try:
        yield
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
        mapped = (messages or {}).get(constraint or "")
        if isinstance(mapped, tuple):
            raise mapped[0](mapped[1]) from exc
        if mapped is not None:
            raise mapped(str(exc.orig)) from exc
        raise ConflictError(f"conflicting write ({constraint or 'integrity error'})") from exc


class Repository(Generic[ModelT]):
    """Data access for one aggregate; flushes, never commits (the service owns the unit of work)."""

    model_type: ClassVar[type[Base]]

    def __init__(self, *, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: Any) -> ModelT:
        """The row with primary key `key`.

        Raises:
            NotFoundError: no such row.
        """
        row = await self.session.get(self.model_type, key)
        if row is None:
            raise NotFoundError(f"{self.model_type.__name__} {key!r} not found")
        return row  # type: ignore[return-value]

    async def add(self, row: ModelT) -> ModelT:
        """Insert `row` and flush, so defaults and ids are loaded.

        Raises:
            ConflictError: the row breaks a unique or foreign key constraint.
        """
        self.session.add(row)
        with translate_integrity_errors():
            await self.session.flush()
        return row
