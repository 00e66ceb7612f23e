"""Question import, export and seeding against the real database: all or nothing,
duplicates counted, guild scoping, round trips, idempotent seeding."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quizbot import models
from quizbot.cache import QUESTIONS, QuizCache
from quizbot.errors import InvalidInputError, NotFoundError
from quizbot.repositories import QuestionRepository
from quizbot.services.practice import generate_practice_questions
from quizbot.services.question_bank import QuestionBankService, bundled_files, load_bundled
from quizbot.services.question_formats import QuestionFileError, record_from_model
from tests.factories import GuildFactory, snowflake

YAML_FILE = b"""\
topic: Physics
questions:
  - prompt: "What is the SI unit of force?"
    kind: free_text
    difficulty: easy
    category: Mechanics
    answer: newton
    accepted: ["N"]
    explanation: "Named after Isaac Newton."
  - prompt: "Sound travels faster in air than in steel."
    kind: true_false
    difficulty: medium
    category: Waves
    answer: "False"
    explanation: "Sound is faster in stiffer media."
  - prompt: "What is the speed of light, in km/s (approximately)?"
    kind: free_text
    difficulty: hard
    category: Optics
    answer: "300000"
    tolerance: 1000
    explanation: "About 299,792 km/s."
"""

JSON_FILE = json.dumps(
    {
        "topic": "Chemistry",
        "questions": [
            {
                "prompt": "Which element has the symbol Fe?",
                "kind": "multiple_choice",
                "difficulty": "easy",
                "category": "Elements",
                "choices": ["Iron", "Fluorine", "Lead"],
                "answer": "Iron",
            }
        ],
    }
).encode()

CSV_FILE = (
    b"topic,category,difficulty,kind,prompt,choices,answer,accepted,tolerance,explanation\n"
    b"Geography,Capitals,easy,multiple_choice,Capital of Canada?,Toronto|Ottawa,Ottawa,,,\n"
    b"Geography,Capitals,easy,free_text,Capital of Peru?,,Lima,,,Lima sits on the coast.\n"
)

OPENTDB_FILE = json.dumps(
    {
        "response_code": 0,
        "results": [
            {
                "type": "boolean",
                "difficulty": "easy",
                "category": "Science &amp; Nature",
                "question": "Water boils at 100&deg;C at sea level.",
                "correct_answer": "True",
                "incorrect_answers": ["False"],
            }
        ],
    }
).encode()

RED_FILE = b"AUTHOR: Red\nCapital of Chile?:\n- Santiago\nHow many continents are there?:\n- 7\n"

FILES = [
    ("physics.yaml", YAML_FILE, "quizbot-yaml", 3),
    ("chemistry.json", JSON_FILE, "quizbot-json", 1),
    ("geography.csv", CSV_FILE, "quizbot-csv", 2),
    ("opentdb.json", OPENTDB_FILE, "opentdb", 1),
    ("capitals.yaml", RED_FILE, "red-trivia", 2),
]

# Guild ids no factory hands out, with no `guilds` row yet.
NEW_GUILD = snowflake(7_000_001)
OTHER_GUILD = snowflake(7_000_002)


@pytest.fixture
def bank(sessionmaker: async_sessionmaker[AsyncSession]) -> QuestionBankService:
    return QuestionBankService(sessionmaker)


async def count_questions(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(models.Question)) or 0)


@pytest.mark.parametrize(("filename", "data", "fmt", "expected"), FILES, ids=[f[2] for f in FILES])
async def test_import_each_format_into_a_new_guild(
    bank: QuestionBankService,
    session: AsyncSession,
    filename: str,
    data: bytes,
    fmt: str,
    expected: int,
) -> None:
    report = await bank.import_file(data, filename=filename, guild_id=NEW_GUILD, created_by=99)
    assert (report.fmt, report.parsed, report.inserted, report.skipped_duplicates) == (
        fmt,
        expected,
        expected,
        0,
    )
    # The guild had no row: the import created one, named after its id until the bot renames it.
    guild = await session.get(models.Guild, NEW_GUILD)
    assert guild is not None and guild.name == str(NEW_GUILD)
    own = await QuestionRepository(session=session).for_export(guild_id=NEW_GUILD)
    assert len(own) == expected
    assert {(q.guild_id, q.created_by, q.enabled) for q in own} == {(NEW_GUILD, 99, True)}


async def test_importing_the_same_file_twice_inserts_nothing_the_second_time(
    bank: QuestionBankService,
) -> None:
    first = await bank.import_file(YAML_FILE, filename="physics.yaml", guild_id=NEW_GUILD)
    second = await bank.import_file(YAML_FILE, filename="physics.yaml", guild_id=NEW_GUILD)
    assert (first.inserted, first.skipped_duplicates) == (3, 0)
    assert (second.parsed, second.inserted, second.skipped_duplicates) == (3, 0, 3)


async def test_duplicates_within_a_file_are_skipped_and_counted(
    bank: QuestionBankService,
) -> None:
    # The same prompt with different case and spacing is the same question.
    data = CSV_FILE + b"Geography,Capitals,easy,free_text,capital  of PERU?,,Lima,,,\n"
    report = await bank.import_file(data, filename="geo.csv", guild_id=NEW_GUILD)
    assert (report.parsed, report.inserted, report.skipped_duplicates) == (3, 2, 1)


async def test_a_malformed_file_imports_nothing_and_says_where(
    bank: QuestionBankService, session: AsyncSession
) -> None:
    before = await count_questions(session)
    broken = YAML_FILE + (
        b'  - prompt: "Which particle has no charge?"\n'
        b"    kind: multiple_choice\n"
        b"    difficulty: impossible\n"
        b"    category: Particles\n"
        b"    choices: [Proton, Neutron]\n"
        b"    answer: Neutron\n"
    )
    with pytest.raises(InvalidInputError) as caught:
        await bank.import_file(broken, filename="physics.yaml", guild_id=NEW_GUILD)
    assert isinstance(caught.value, QuestionFileError)
    assert str(caught.value) == (
        'physics.yaml was not imported: question 4 ("Which particle has no charge?"), '
        'field "difficulty": must be easy, medium or hard (got "impossible")'
    )
    assert await count_questions(session) == before
    assert await session.get(models.Guild, NEW_GUILD) is None


async def test_a_guild_import_is_visible_only_to_that_guild(
    bank: QuestionBankService, session: AsyncSession
) -> None:
    await bank.import_file(YAML_FILE, filename="physics.yaml", guild_id=NEW_GUILD)
    repo = QuestionRepository(session=session)
    assert len(await repo.pool_ids(guild_id=NEW_GUILD, topic="Physics")) == 3
    assert await repo.pool_ids(guild_id=OTHER_GUILD, topic="Physics") == []
    assert await repo.pool_ids(guild_id=None, topic="Physics") == []


async def test_the_shared_bank_import_is_visible_to_every_guild(
    bank: QuestionBankService, session: AsyncSession
) -> None:
    report = await bank.import_file(JSON_FILE, filename="chemistry.json", guild_id=None)
    assert report.inserted == 1
    repo = QuestionRepository(session=session)
    assert len(await repo.pool_ids(guild_id=OTHER_GUILD, topic="Chemistry")) == 1


async def test_importing_into_a_known_guild_keeps_its_name(
    bank: QuestionBankService, session: AsyncSession
) -> None:
    guild = GuildFactory(name="Chess Club")
    await session.flush()
    await bank.import_file(CSV_FILE, filename="geo.csv", guild_id=guild.guild_id)
    await session.refresh(guild)
    assert guild.name == "Chess Club"


@pytest.mark.parametrize("fmt", ["quizbot-json", "quizbot-yaml", "quizbot-csv"])
async def test_export_then_import_into_another_guild_gives_the_same_questions(
    bank: QuestionBankService, session: AsyncSession, fmt: str
) -> None:
    for filename, data, *_ in FILES:
        await bank.import_file(data, filename=filename, guild_id=NEW_GUILD)
    exported = await bank.export(guild_id=NEW_GUILD, fmt=fmt)
    extension = fmt.removeprefix("quizbot-")
    report = await bank.import_file(exported, filename=f"x.{extension}", guild_id=OTHER_GUILD)
    assert (report.fmt, report.inserted) == (fmt, 9)

    repo = QuestionRepository(session=session)
    original = [record_from_model(q) for q in await repo.for_export(guild_id=NEW_GUILD)]
    copied = [record_from_model(q) for q in await repo.for_export(guild_id=OTHER_GUILD)]
    # The source says where a question came from; a re-import is an import.
    assert [replace(r, source="") for r in copied] == [replace(r, source="") for r in original]
    assert {r.source for r in copied} == {"import"}


async def test_export_of_an_empty_guild_and_an_unknown_format(bank: QuestionBankService) -> None:
    assert json.loads(await bank.export(guild_id=NEW_GUILD)) == {"questions": []}
    with pytest.raises(InvalidInputError, match="cannot export as"):
        await bank.export(guild_id=NEW_GUILD, fmt="opentdb")


async def test_seed_bundled_loads_every_file_and_the_practice_set_once(
    bank: QuestionBankService, session: AsyncSession
) -> None:
    calls: list[tuple[int, int]] = []
    first = await bank.seed_bundled(progress=lambda done, total: calls.append((done, total)))
    sources = len(bundled_files()) + 1
    assert calls[-1] == (sources, sources) and len(calls) == sources
    assert first.fmt == "bundled" and first.parsed > 700 + 200
    assert first.inserted + first.skipped_duplicates == first.parsed

    second = await bank.seed_bundled()
    assert (second.parsed, second.inserted, second.skipped_duplicates) == (
        first.parsed,
        0,
        first.parsed,
    )

    repo = QuestionRepository(session=session)
    practice = await repo.pool_ids(guild_id=None, topic="Mathematics Practice")
    assert len(practice) == len(generate_practice_questions())
    topics = {topic for topic, _, _ in await repo.topics(guild_id=None)}
    assert topics >= {r.topic for r in load_bundled()} | {"Mathematics Practice"}
    sources_seen = await session.scalars(select(models.Question.source).distinct())
    assert set(sources_seen) >= {"bundled", "practice"}


async def test_progress_runs_on_the_event_loop_thread(bank: QuestionBankService) -> None:
    threads: set[int] = set()
    await bank.import_file(
        YAML_FILE,
        filename="physics.yaml",
        guild_id=NEW_GUILD,
        progress=lambda done, total: threads.add(threading.get_ident()),
    )
    assert threads == {threading.get_ident()}


async def test_an_import_invalidates_the_question_cache(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    cache = QuizCache(QuizCache.memory_backend())
    bank = QuestionBankService(sessionmaker, cache)
    before = await cache.generation(QUESTIONS, NEW_GUILD)
    await bank.import_file(YAML_FILE, filename="physics.yaml", guild_id=NEW_GUILD)
    assert await cache.generation(QUESTIONS, NEW_GUILD) == before + 1
    # Nothing new, nothing to invalidate.
    await bank.import_file(YAML_FILE, filename="physics.yaml", guild_id=NEW_GUILD)
    assert await cache.generation(QUESTIONS, NEW_GUILD) == before + 1
    await cache.close()


async def test_a_guild_can_disable_its_own_questions_but_not_shared_ones(
    bank: QuestionBankService, session: AsyncSession
) -> None:
    await bank.import_file(YAML_FILE, filename="physics.yaml", guild_id=NEW_GUILD)
    await bank.import_file(JSON_FILE, filename="chemistry.json", guild_id=None)
    repo = QuestionRepository(session=session)
    own = await repo.pool_ids(guild_id=NEW_GUILD, topic="Physics")
    await bank.set_enabled(guild_id=NEW_GUILD, question_id=own[0], enabled=False)
    assert await repo.pool_ids(guild_id=NEW_GUILD, topic="Physics") == own[1:]
    await bank.set_enabled(guild_id=NEW_GUILD, question_id=own[0], enabled=True)
    assert await repo.pool_ids(guild_id=NEW_GUILD, topic="Physics") == own
    (shared,) = await repo.pool_ids(guild_id=None, topic="Chemistry")
    with pytest.raises(NotFoundError):
        await bank.set_enabled(guild_id=NEW_GUILD, question_id=shared, enabled=False)
