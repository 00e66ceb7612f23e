"""What every repository shares: a model type, a keyword-only session, error translation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from quizbot.driver import DriverConnection
from quizbot.errors import ConflictError, NotFoundError
from quizbot.models import Base

ModelT = TypeVar("ModelT", bound=Base)
# What a repository runs its statements on: an ORM session, or, for statements that
# return rows rather than mapped objects, a Core connection (no ORM session to build
# and close for a one-statement unit of work; see `quizbot.resilience.GuardedConnection`)
# or a pooled connection that runs them on the driver (`quizbot.driver`).
Executor = AsyncSession | AsyncConnection | DriverConnection
# Where a service gets one for a unit of work: `async with executors() as executor:`.
ExecutorFactory = Callable[[], AbstractAsyncContextManager[Executor]]


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

    def __init__(self, *, session: Executor) -> None:
        self.session = session

    @property
    def orm(self) -> AsyncSession:
        """The ORM session, for methods that load, add or flush mapped objects.

        Raises:
            TypeError: the repository was given a Core connection. On a connection,
                `select(Model)` would return plain rows, not objects: refuse instead.
        """
        if not isinstance(self.session, AsyncSession):
            raise TypeError(f"{type(self).__name__} needs an ORM session for this method")
        return self.session

    async def get(self, key: Any) -> ModelT:
        """The row with primary key `key`.

        Raises:
            NotFoundError: no such row.
        """
        row = await self.orm.get(self.model_type, key)
        if row is None:
            raise NotFoundError(f"{self.model_type.__name__} {key!r} not found")
        return row  # type: ignore[return-value]

    async def add(self, row: ModelT) -> ModelT:
        """Insert `row` and flush, so defaults and ids are loaded.

        Raises:
            ConflictError: the row breaks a unique or foreign key constraint.
        """
        self.orm.add(row)
        with translate_integrity_errors():
            await self.orm.flush()
        return row
