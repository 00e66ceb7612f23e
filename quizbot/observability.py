"""Counting the SQL a block of code sends: tests pin round trips, the benchmark reports them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from quizbot import driver

# Transaction control that SQLAlchemy emits around savepoints is bookkeeping,
# not a statement the code under test chose to send.
_BOOKKEEPING = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@dataclass
class StatementLog:
    """The statements seen while counting."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many statements were sent."""
        return len(self.statements)


@contextmanager
def count_statements(bind: AsyncEngine | AsyncConnection) -> Iterator[StatementLog]:
    """Record every statement sent through `bind` while the block runs (for an engine,
    also those its `quizbot.driver.DriverConnections` send)."""
    target: Engine | Connection = (
        bind.sync_engine if isinstance(bind, AsyncEngine) else bind.sync_connection  # type: ignore[assignment]
    )
    log = StatementLog()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(_BOOKKEEPING):
            log.statements.append(statement)

    def record_driver(statement: str, _arguments: Sequence[Any]) -> None:
        if statement not in driver.TRANSACTION_CONTROL:  # as the events above
            log.statements.append(statement)

    event.listen(target, "before_cursor_execute", record)
    if isinstance(bind, AsyncEngine):  # and what runs on the driver over its pool
        driver.listen(bind, record_driver)
    try:
        yield log
    finally:
        event.remove(target, "before_cursor_execute", record)
        if isinstance(bind, AsyncEngine):
            driver.remove(bind, record_driver)
