"""The question bank."""

from __future__ import annotations

import functools
import hashlib
import itertools
import unicodedata
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    any_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.sql import Executable

from quizbot.driver import prime_at_start
from quizbot.errors import NotFoundError
from quizbot.models import Difficulty, Question
from quizbot.repositories.base import Repository

_ID_ARRAY = ARRAY(BigInteger)

# Every row of a multi-row INSERT must name the same columns (SQLAlchemy takes
# the column list from the first row), so missing optional values are filled here.
_OPTIONAL_COLUMNS: dict[str, Any] = {
    "guild_id": None,
    "choices": [],
    "accepted": [],
    "tolerance": None,
    "explanation": "",
    "source": "admin",
    "enabled": True,
    "created_by": None,
}

# asyncpg allows 32,767 bind parameters per statement; a question row uses 15.
_INSERT_CHUNK = 1000
_QUESTIONS = Question.__table__
# `= ANY(array)`, not `IN (...)`: one statement for any number of ids, prepared once per
# connection (an IN list is a new statement for every length); one statement object,
# compiled once (also on the driver, which compiles per object).
_GET_MANY = select(*_QUESTIONS.c).where(_QUESTIONS.c.id == any_(bindparam("ids", type_=_ID_ARRAY)))
# The cache's warm-up read.
_ENABLED = (
    select(*_QUESTIONS.c)
    .where(_QUESTIONS.c.enabled)
    .order_by(_QUESTIONS.c.id)
    .limit(bindparam("limit"))
)


def question_hash(topic: str, prompt: str) -> str:
    """Identity of a question for de-duplication: topic and prompt, case and spacing folded."""
    folded = " ".join(unicodedata.normalize("NFKC", f"{topic}\n{prompt}").casefold().split())
    return hashlib.sha256(folded.encode()).hexdigest()


def _visible(guild: bool) -> ColumnElement[bool]:
    """The shared bank (guild_id NULL), plus the guild's own questions with `guild`."""
    if not guild:
        return Question.guild_id.is_(None)
    return or_(Question.guild_id.is_(None), Question.guild_id == bindparam("guild_id"))


# The statements with optional filters, one object per shape: the driver compiles a
# statement once per object (`quizbot.driver`), SQLAlchemy caches by shape anyway.
@functools.cache
def _pool_ids_sql(guild: bool, topic: bool, category: bool, difficulty: bool) -> Executable:
    stmt = select(Question.id).where(Question.enabled, _visible(guild))
    if topic:
        stmt = stmt.where(func.lower(Question.topic) == bindparam("topic"))
    if category:
        stmt = stmt.where(func.lower(Question.category) == bindparam("category"))
    if difficulty:
        stmt = stmt.where(Question.difficulty == bindparam("difficulty"))
    return stmt.order_by(Question.id)


@functools.cache
def _topics_sql(guild: bool) -> Executable:
    return (
        select(Question.topic, Question.category, func.count())
        .where(Question.enabled, _visible(guild))
        .group_by(Question.topic, Question.category)
        .order_by(Question.topic, Question.category)
    )


# A quiz's start reads the question pool and topics, and a question missing from the
# cache, on the driver (`QuizService`).
prime_at_start(
    _GET_MANY,
    *(_pool_ids_sql(*shape) for shape in itertools.product((False, True), repeat=4)),
    *(_topics_sql(guild) for guild in (False, True)),
)


class QuestionRepository(Repository[Question]):
    """Questions visible to a guild are the shared bank (guild_id NULL) plus its own."""

    model_type = Question

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
        """Insert questions, skipping those whose scope already holds the same question.

        Each row holds Question column values; `content_hash` is computed when absent.

        Returns:
            (inserted, skipped as duplicates).
        """
        inserted = 0
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = [
                {
                    **_OPTIONAL_COLUMNS,
                    "content_hash": question_hash(r["topic"], r["prompt"]),
                    **r,
                }
                for r in rows[start : start + _INSERT_CHUNK]
            ]
            stmt = insert(Question).values(chunk).on_conflict_do_nothing().returning(Question.id)
            inserted += len((await self.session.scalars(stmt)).all())
        return inserted, len(rows) - inserted

    async def pool_ids(
        self,
        *,
        guild_id: int | None,
        topic: str | None = None,
        category: str | None = None,
        difficulty: Difficulty | None = None,
    ) -> list[int]:
        """Ids of the enabled questions a guild may draw with these filters (None = any)."""
        stmt = _pool_ids_sql(guild_id is not None, bool(topic), bool(category), bool(difficulty))
        params = {
            "guild_id": guild_id,
            "topic": (topic or "").lower(),
            "category": (category or "").lower(),
            "difficulty": difficulty,
        }
        return list((await self.session.scalars(stmt, params)).all())

    async def get_many(self, ids: Sequence[int]) -> list[Row[Any]]:
        """The questions with these ids, in the order given (missing ids are left out).

        Rows with the question's columns as attributes, not mapped objects: this runs
        on a Core connection, with no identity map or object per question.
        """
        if not ids:
            return []
        rows = (await self.session.execute(_GET_MANY, {"ids": list(ids)})).all()
        by_id = {r.id: r for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def enabled(self, *, limit: int) -> list[Row[Any]]:
        """Up to `limit` enabled questions of every scope, by id (the cache's warm-up)."""
        return list((await self.session.execute(_ENABLED, {"limit": limit})).all())

    async def topics(self, *, guild_id: int | None) -> list[tuple[str, str, int]]:
        """(topic, category, number of enabled questions) visible to a guild."""
        stmt = _topics_sql(guild_id is not None)
        return [(t, c, n) for t, c, n in (await self.session.execute(stmt, {"guild_id": guild_id}))]

    async def set_enabled(self, *, guild_id: int, question_id: int, enabled: bool) -> None:
        """Enable or disable one of the guild's own questions.

        Raises:
            NotFoundError: no such question in this guild (the shared bank is read-only).
        """
        stmt = (
            update(Question)
            .where(Question.id == question_id, Question.guild_id == guild_id)
            .values(enabled=enabled)
            .returning(Question.id)
        )
        if (await self.session.execute(stmt)).scalar_one_or_none() is None:
            raise NotFoundError(f"question {question_id} is not one of this server's questions")

    async def for_export(self, *, guild_id: int | None) -> list[Question]:
        """A scope's own questions (the shared bank when guild_id is None), by id."""
        stmt = select(Question).where(
            Question.guild_id.is_(None) if guild_id is None else Question.guild_id == guild_id
        )
        return list((await self.orm.scalars(stmt.order_by(Question.id))).all())
