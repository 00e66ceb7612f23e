"""Question bank use cases: import a file, export a bank, seed the bundled questions.

Parsing and serialising run in a worker thread (`asyncio.to_thread`), so a 5 MB
file never blocks the event loop; each use case is one short transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quizbot.cache import QUESTIONS, QuizCache
from quizbot.errors import InvalidInputError, NotFoundError
from quizbot.repositories import GuildRepository, QuestionRepository
from quizbot.services.practice import generate_practice_questions
from quizbot.services.question_formats import (
    EXPORT_FORMATS,
    QuestionRecord,
    export_questions,
    parse_file,
    parse_questions,
    record_from_model,
)

Progress = Callable[[int, int], None]

BUNDLED_SOURCE = "bundled"
BUNDLED_FORMAT = "bundled"


@dataclass(frozen=True)
class ImportReport:
    """What an import did: questions read, inserted, and skipped as already present."""

    fmt: str
    parsed: int
    inserted: int
    skipped_duplicates: int


class QuestionBankService:
    """Imports, exports and seeding of the shared bank and of each guild's own questions."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: QuizCache | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._cache = cache

    async def import_file(
        self,
        data: bytes,
        *,
        filename: str,
        guild_id: int | None,
        created_by: int | None = None,
        fmt: str | None = None,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import every question of a file, or none of them.

        Args:
            data: the file's bytes (at most MAX_IMPORT_BYTES).
            filename: the file's name; its extension helps detect the format.
            guild_id: the guild whose own bank receives the questions; None for the shared bank.
            created_by: the user importing, recorded on each question.
            fmt: one of IMPORT_FORMATS; None detects it from the name and content.
            progress: called on the event loop with (questions checked, total).

        Returns:
            The format read and the counts; questions the scope already has are skipped.

        Raises:
            InvalidInputError: the file is too big or malformed, or a question is invalid
                (a `QuestionFileError` listing every problem); nothing is written.
        """
        parsed = await asyncio.to_thread(
            parse_file, data, filename=filename, fmt=fmt, progress=_on_loop(progress)
        )
        inserted, skipped = await self._insert(parsed.records, guild_id, created_by)
        return ImportReport(parsed.fmt, len(parsed.records), inserted, skipped)

    async def export(self, *, guild_id: int | None, fmt: str = "quizbot-json") -> bytes:
        """A bank in one of our formats, which `import_file` reads back.

        Args:
            guild_id: the guild whose own questions to export; None for the shared bank.
            fmt: quizbot-json, quizbot-yaml or quizbot-csv.

        Returns:
            The file's bytes (UTF-8), disabled questions included.

        Raises:
            InvalidInputError: unknown format, or a CSV cell would contain the `|` separator.
        """
        if fmt not in EXPORT_FORMATS:
            raise InvalidInputError(
                f'cannot export as "{fmt}": use one of {", ".join(EXPORT_FORMATS)}'
            )
        async with self._sessionmaker() as session:
            questions = await QuestionRepository(session=session).for_export(guild_id=guild_id)
            records = [record_from_model(q) for q in questions]
        return await asyncio.to_thread(export_questions, records, fmt)

    async def seed_bundled(self, *, progress: Progress | None = None) -> ImportReport:
        """Load the bundled bank and the generated practice questions into the shared bank.

        Idempotent: questions already present are skipped, so a second run inserts nothing.

        Args:
            progress: called on the event loop with (sources loaded, total sources),
                a source being a bundled file or the practice set.

        Returns:
            The counts, with fmt "bundled".

        Raises:
            InvalidInputError: a bundled file is invalid (a packaging bug); nothing is written.
        """
        records = await asyncio.to_thread(load_bundled, _on_loop(progress))
        inserted, skipped = await self._insert(records, None, None)
        return ImportReport(BUNDLED_FORMAT, len(records), inserted, skipped)

    async def set_enabled(self, *, guild_id: int, question_id: int, enabled: bool) -> None:
        """Stop or resume asking one of a guild's own questions.

        Args:
            guild_id: the guild that owns the question.
            question_id: the question's id.
            enabled: False to stop asking it, True to ask it again.

        Raises:
            NotFoundError: not one of this guild's questions (the shared bank is read-only).
        """
        async with self._sessionmaker() as session, session.begin():
            await QuestionRepository(session=session).set_enabled(
                guild_id=guild_id, question_id=question_id, enabled=enabled
            )
        if self._cache is not None:
            await self._cache.invalidate(QUESTIONS, guild_id)

    async def _insert(
        self, records: list[QuestionRecord], guild_id: int | None, created_by: int | None
    ) -> tuple[int, int]:
        """One transaction: the guild row if missing, then every question."""
        rows = [r.to_row(guild_id=guild_id, created_by=created_by) for r in records]
        async with self._sessionmaker() as session, session.begin():
            if guild_id is not None:
                await _ensure_guild(session, guild_id)
            inserted, skipped = await QuestionRepository(session=session).add_many(rows)
        if self._cache is not None and inserted:
            await self._cache.invalidate(QUESTIONS, guild_id)
        return inserted, skipped


async def _ensure_guild(session: AsyncSession, guild_id: int) -> None:
    """Create a guild row for a guild the bot has not stored yet (questions reference it)."""
    guilds = GuildRepository(session=session)
    try:
        await guilds.get(guild_id)
    except NotFoundError:
        # The name is a placeholder; `ensure` would overwrite a real name, hence the check.
        await guilds.ensure(guild_id=guild_id, name=str(guild_id))


def _on_loop(progress: Progress | None) -> Progress | None:
    """Run a progress callback on the event loop, whichever thread reports."""
    if progress is None:
        return None
    loop = asyncio.get_running_loop()

    def report(done: int, total: int) -> None:
        loop.call_soon_threadsafe(progress, done, total)

    return report


def bundled_files() -> list[tuple[str, bytes]]:
    """(name, content) of every bundled bank file, sorted by name."""
    folder = resources.files("quizbot") / "data" / "questions"
    files = [f for f in folder.iterdir() if f.name.endswith((".yaml", ".yml"))]
    return [(f.name, f.read_bytes()) for f in sorted(files, key=lambda f: f.name)]


def load_bundled(progress: Progress | None = None) -> list[QuestionRecord]:
    """Every bundled question (source "bundled") followed by the practice set (blocking).

    Args:
        progress: called with (sources loaded, total sources).

    Returns:
        The records in file order.
    """
    files = bundled_files()
    total = len(files) + 1
    records: list[QuestionRecord] = []
    for done, (name, data) in enumerate(files, 1):
        parsed = parse_questions(data, filename=name)
        records += [dataclasses.replace(r, source=BUNDLED_SOURCE) for r in parsed]
        if progress is not None:
            progress(done, total)
    records += generate_practice_questions()
    if progress is not None:
        progress(total, total)
    return records
