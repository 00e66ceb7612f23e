"""Group-committed answers: totals, per-caller outcomes, statement counts, failures."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from quizbot import models
from quizbot.cache import SCORES, QuizCache
from quizbot.config import Settings
from quizbot.db import create_engine, create_sessionmaker
from quizbot.errors import NotFoundError
from quizbot.observability import count_statements
from quizbot.repositories import AchievementRepository, MemberRepository
from quizbot.resilience import CircuitBreaker
from quizbot.services.achievements import catalogue_rows
from quizbot.services.answer_batch import AnswerBatchWriter
from quizbot.services.group_commit import GroupCommitter
from quizbot.services.quiz import AnswerOutcome, QuestionView, QuizFilters, QuizService
from quizbot.services.scoring import ScoringConfig, score_answer
from tests.committed_data import quiz_data, waits_for_a_lock
from tests.daily_points import answer_roll_ups, roll_ups
from tests.factories import GuildFactory, QuestionFactory

GUILD = 5_100_000_000_000_001
OTHER_GUILD = 5_100_000_000_000_002
CHANNELS = [5_100_000_000_000_100 + i for i in range(24)]
PLAYERS = [5_100_000_000_000_200 + i for i in range(8)]
# Long after every question started: the speed factor is at its floor, so points
# depend only on correctness, difficulty and streak, and two runs compare exactly.
LATE = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


def _service(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    batch: int | None,
    window_ms: float = 1e5,
    fast: bool = False,
) -> QuizService:
    """`batch`: flush exactly when that many answers are queued (the window never ends
    first, so batching is deterministic); None: group commit off. `fast`: batches try
    the autocommit fast path first, as in the app (needs sessions that really commit)."""
    return QuizService(
        sessionmaker,
        QuizCache(QuizCache.memory_backend()),
        rng=random.Random(5),
        answer_group_commit=batch is not None,
        answer_group_commit_ms=window_ms,
        answer_batch_max=batch or 1,
        answer_autocommit=_autocommit(sessionmaker) if fast else None,
    )


def _autocommit(committed: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Autocommit sessions on the engine of `committed` (the fast path's)."""
    engine = committed.kw["bind"]
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )


@pytest.fixture
async def bank(session: AsyncSession) -> None:
    await AchievementRepository(session=session).sync_catalogue(catalogue_rows())
    GuildFactory(guild_id=GUILD, name="Batch")
    GuildFactory(guild_id=OTHER_GUILD, name="Other")
    for i in range(4):
        QuestionFactory(topic="Batching", category="c", prompt=f"Batch {i}?")
    await session.commit()


async def _channel_quiz(quiz: QuizService, channel: int, guild: int = GUILD) -> QuestionView:
    return await quiz.start(
        guild_id=guild,
        guild_name="Batch",
        channel_id=channel,
        user_id=PLAYERS[0],
        display_name="host",
        mode=models.SessionMode.CHANNEL,
        filters=QuizFilters(topic="Batching", count=2),
    )


def _click(
    quiz: QuizService, view: QuestionView, user: int, given: str
) -> asyncio.Task[AnswerOutcome]:
    return asyncio.ensure_future(
        quiz.answer(
            session_id=view.session_id,
            question_id=view.question_id,
            user_id=user,
            display_name=f"p{user % 1000}",
            given=given,
            now=LATE,
        )
    )


async def _member_rows(
    session: AsyncSession, guild: int
) -> dict[int, tuple[int, int, int, int, int, int]]:
    rows = await session.execute(
        select(
            models.GuildMember.user_id,
            models.GuildMember.points,
            models.GuildMember.xp,
            models.GuildMember.answered,
            models.GuildMember.correct,
            models.GuildMember.answer_streak,
            models.GuildMember.best_streak,
        ).where(models.GuildMember.guild_id == guild)
    )
    return {r[0]: tuple(r[1:]) for r in rows}  # type: ignore[misc]


async def _answer_sums(session: AsyncSession, guild: int) -> dict[int, tuple[int, int, int]]:
    rows = await session.execute(
        select(
            models.Answer.user_id,
            func.sum(models.Answer.points),
            func.count(),
            func.count().filter(models.Answer.correct),
        )
        .where(models.Answer.guild_id == guild)
        .group_by(models.Answer.user_id)
    )
    return {u: (int(p), n, c) for u, p, n, c in rows}


async def test_concurrent_answers_with_double_clicks_and_two_sessions_add_up(
    bank: None, sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    quiz = _service(sessionmaker, batch=1000, window_ms=5)
    views = [await _channel_quiz(quiz, channel) for channel in CHANNELS[:3]]
    rng = random.Random(11)
    clicks = []
    for view in views:  # every player in every session: the same member in three sessions
        for user in PLAYERS:
            given = rng.choice(["Alpha", "Beta"])
            for _ in range(rng.choice([1, 1, 2, 3])):  # double and triple clicks
                clicks.append(_click(quiz, view, user, given))
    outcomes = await asyncio.gather(*clicks)
    recorded = [o for o in outcomes if o.recorded]
    assert len(recorded) == len(views) * len(PLAYERS)  # one per (session, member)
    assert all(o.reason == "duplicate" for o in outcomes if not o.recorded)
    assert quiz.answer_batcher is not None and quiz.answer_batcher.stats.items == len(clicks)
    members = await _member_rows(session, GUILD)
    sums = await _answer_sums(session, GUILD)
    for user in PLAYERS:
        points, _xp, answered, correct, _streak, _best = members[user]
        assert (points, answered, correct) == sums[user]
    assert sum(m[0] for m in members.values()) == sum(o.points for o in recorded)
    users = {
        u: p for u, p in await session.execute(select(models.User.user_id, models.User.points))
    }
    assert all(users[u] == sums[u][0] for u in PLAYERS)
    for view in views:
        row = await session.get(models.QuizSession, view.session_id)
        assert row is not None and row.answered_count == len(PLAYERS)
    assert await roll_ups(session, [GUILD]) == await answer_roll_ups(session, [GUILD])
    await quiz.close()


async def _scenario(
    quiz: QuizService, guild: int, channels: Sequence[int], plan: Sequence[tuple[int, int, str]]
) -> list[AnswerOutcome]:
    """Answer `plan` (channel index, player, given) in order, all at once."""
    views = [await _channel_quiz(quiz, channel, guild) for channel in channels]
    tasks = [_click(quiz, views[c], user, given) for c, user, given in plan]
    return list(await asyncio.gather(*tasks))


# (session, player, answer): one member answers several sessions in one batch, with
# wrong answers between right ones, so streaks and bonuses depend on the order.
PLAN = [
    (0, PLAYERS[1], "Alpha"),
    (1, PLAYERS[1], "Alpha"),
    (2, PLAYERS[1], "Beta"),
    (3, PLAYERS[1], "Alpha"),
    (4, PLAYERS[1], "Alpha"),
    (0, PLAYERS[2], "Beta"),
    (1, PLAYERS[2], "Alpha"),
    (2, PLAYERS[2], "Alpha"),
    (0, PLAYERS[3], "Alpha"),
    (0, PLAYERS[3], "Alpha"),  # double click
]


@pytest.mark.parametrize("streak_before", [0, 4])
async def test_one_batch_gives_each_caller_what_one_by_one_would(
    bank: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    streak_before: int,
) -> None:
    if streak_before:  # members already on a streak in both guilds
        for guild in (GUILD, OTHER_GUILD):
            for user in PLAYERS[1:4]:
                await MemberRepository(session=session).ensure(
                    guild_id=guild, user_id=user, display_name=f"p{user % 1000}"
                )
        await session.execute(
            update(models.GuildMember)
            .where(models.GuildMember.user_id.in_(PLAYERS[1:4]))
            .values(answer_streak=streak_before, best_streak=streak_before + 1)
        )
        await session.commit()
    one_by_one = _service(sessionmaker, batch=None)
    expected = []
    views = [await _channel_quiz(one_by_one, c, OTHER_GUILD) for c in CHANNELS[6:11]]
    for c, user, given in PLAN:
        expected.append(await _click(one_by_one, views[c], user, given))

    batched = _service(sessionmaker, batch=len(PLAN))
    # Same sessions' positions in another guild; the streak before is 0 in both.
    outcomes = await _scenario(batched, GUILD, CHANNELS[:5], PLAN)
    assert batched.answer_batcher is not None
    assert batched.answer_batcher.stats.batches == 1

    def essentials(o: AnswerOutcome) -> tuple[object, ...]:
        codes = tuple(a.code for a in o.achievements)
        return (o.recorded, o.reason, o.correct, o.points, o.xp, o.streak, o.level, o.level_up,
                o.total_points, codes)  # fmt: skip

    assert [essentials(o) for o in outcomes] == [essentials(o) for o in expected]
    assert await _member_rows(session, GUILD) == await _member_rows(session, OTHER_GUILD)
    member = (await _member_rows(session, GUILD))[PLAYERS[1]]
    # Two right (extending the streak), one wrong, two right: streak 2.
    assert member[4:] == (2, max(2, streak_before + 2, streak_before + 1))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_batches_match_one_by_one(
    bank: None, sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession, seed: int
) -> None:
    rng = random.Random(seed)
    sessions = 10
    plan = [
        (c, user, rng.choice(["Alpha", "Alpha", "Beta"]))
        for c in range(sessions)
        for user in PLAYERS[1:4]
        if rng.random() < 0.8
    ]
    plan += [rng.choice(plan) for _ in range(5)]  # double clicks, later
    rng.shuffle(plan)
    one_by_one = _service(sessionmaker, batch=None)
    views = [await _channel_quiz(one_by_one, c, OTHER_GUILD) for c in CHANNELS[12 : 12 + sessions]]
    expected = [await _click(one_by_one, views[c], u, g) for c, u, g in plan]
    batched = _service(sessionmaker, batch=len(plan))
    outcomes = await _scenario(batched, GUILD, CHANNELS[:sessions], plan)

    def essentials(o: AnswerOutcome) -> tuple[object, ...]:
        codes = tuple(a.code for a in o.achievements)
        return (o.recorded, o.reason, o.points, o.xp, o.streak, o.level, o.level_up,
                o.total_points, codes)  # fmt: skip

    assert [essentials(o) for o in outcomes] == [essentials(o) for o in expected]
    assert await _member_rows(session, GUILD) == await _member_rows(session, OTHER_GUILD)


async def test_a_batch_is_two_statements_or_three_with_awards(
    bank: None, sessionmaker: async_sessionmaker[AsyncSession], connection: AsyncConnection
) -> None:
    size = len(PLAYERS)
    quiz = _service(sessionmaker, batch=size)
    wrong = await _channel_quiz(quiz, CHANNELS[0])
    right = await _channel_quiz(quiz, CHANNELS[1])
    await quiz.settings.get(GUILD)  # a running bot has these cached
    await quiz.question(wrong.question_id)
    await quiz.question(right.question_id)
    with count_statements(connection) as log:
        await asyncio.gather(*(_click(quiz, wrong, u, "Beta") for u in PLAYERS))
    assert log.count == 2, log.statements  # context + write, for all eight answers
    with count_statements(connection) as log:
        outcomes = await asyncio.gather(*(_click(quiz, right, u, "Alpha") for u in PLAYERS))
    assert log.count == 3, log.statements  # + every "first correct" award in one statement
    assert all([a.code for a in o.achievements] == ["first_correct"] for o in outcomes)


async def test_without_group_commit_an_answer_is_its_own_two_statements(
    bank: None, sessionmaker: async_sessionmaker[AsyncSession], connection: AsyncConnection
) -> None:
    quiz = _service(sessionmaker, batch=None)
    assert quiz.answer_batcher is None
    view = await _channel_quiz(quiz, CHANNELS[0])
    await quiz.settings.get(GUILD)
    await quiz.question(view.question_id)
    with count_statements(connection) as log:
        for user in PLAYERS[:3]:  # one connection in tests: one transaction at a time
            await _click(quiz, view, user, "Beta")
    assert log.count == 2 * 3, log.statements


async def test_an_unknown_session_fails_only_its_caller(
    bank: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    quiz = _service(sessionmaker, batch=3)
    view = await _channel_quiz(quiz, CHANNELS[0])
    ghost = QuestionView(**{**view.__dict__, "session_id": 999_999_999})
    results = await asyncio.gather(
        _click(quiz, view, PLAYERS[1], "Alpha"),
        _click(quiz, ghost, PLAYERS[2], "Alpha"),
        _click(quiz, view, PLAYERS[3], "Beta"),
        return_exceptions=True,
    )
    assert isinstance(results[1], NotFoundError)
    assert isinstance(results[0], AnswerOutcome) and results[0].recorded
    assert isinstance(results[2], AnswerOutcome) and results[2].recorded


async def test_one_bad_answer_does_not_sink_its_batch(
    bank: None, sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    quiz = _service(sessionmaker, batch=3)
    view = await _channel_quiz(quiz, CHANNELS[0])
    results = await asyncio.gather(
        _click(quiz, view, PLAYERS[1], "Alpha"),
        _click(quiz, view, 2**63, "Alpha"),  # does not fit a BIGINT: the batch fails
        _click(quiz, view, PLAYERS[2], "Alpha"),
        return_exceptions=True,
    )
    assert isinstance(results[1], DBAPIError)
    assert all(isinstance(r, AnswerOutcome) and r.recorded for r in (results[0], results[2]))
    assert (await _answer_sums(session, GUILD)).keys() == {PLAYERS[1], PLAYERS[2]}


async def test_a_database_error_reaches_every_caller_and_nothing_is_written(
    bank: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    connection: AsyncConnection,
) -> None:
    quiz = _service(sessionmaker, batch=4)
    view = await _channel_quiz(quiz, CHANNELS[0])
    # DDL is transactional: the test's rollback removes the trigger again.
    await connection.execute(
        text(
            "CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'answers are read-only today'; END $$"
        )
    )
    await connection.execute(
        text(
            "CREATE TRIGGER refuse BEFORE INSERT ON answers "
            "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()"
        )
    )
    results = await asyncio.gather(
        *(_click(quiz, view, u, "Alpha") for u in PLAYERS[:4]), return_exceptions=True
    )
    assert all(isinstance(r, DBAPIError) and "read-only today" in str(r) for r in results)
    assert await _answer_sums(session, GUILD) == {}
    members = await _member_rows(session, GUILD)
    assert all(m[0] == 0 for m in members.values())


async def test_a_failed_flush_fails_every_waiting_caller() -> None:
    async def explode(items: Sequence[int]) -> list[int]:
        raise ConnectionResetError("gone")

    committer: GroupCommitter[int, int] = GroupCommitter(explode, window=0, max_batch=10)
    results = await asyncio.gather(
        *(committer.submit(i) for i in range(25)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionResetError) for r in results)
    assert committer.stats.items == 25 and committer.stats.largest <= 10


async def test_two_flushes_overlap_but_never_share_a_key() -> None:
    # Items are (key, n). A flush waits until told; meanwhile the next batch may start,
    # without the keys of the flush under way.
    running: list[list[tuple[str, int]]] = []
    overlap = 0
    release = asyncio.Event()

    async def flush(items: Sequence[tuple[str, int]]) -> list[int]:
        nonlocal overlap
        batch = list(items)
        busy = {k for b in running for k, _n in b}
        assert not busy & {k for k, _n in batch}, "a key in two flushes at once"
        running.append(batch)
        overlap = max(overlap, len(running))
        await release.wait()
        running.remove(batch)
        return [n for _k, n in batch]

    committer: GroupCommitter[tuple[str, int], int] = GroupCommitter(
        flush, window=0, max_batch=2, in_flight=2, key=lambda item: item[0]
    )
    order: list[tuple[str, int]] = []

    async def submit(item: tuple[str, int]) -> None:
        await committer.submit(item)
        order.append(item)

    items = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("a", 5), ("d", 6)]
    tasks = [asyncio.create_task(submit(i)) for i in items]
    for _ in range(20):
        await asyncio.sleep(0)
    assert overlap == 2  # two batches under way, not one
    release.set()
    await asyncio.gather(*tasks)
    await committer.close()
    # One key's items were written in arrival order, each flush after the previous.
    assert [n for k, n in order if k == "a"] == [1, 3, 5]
    assert sorted(order) == sorted(items)


async def test_close_waits_for_every_flush_under_way() -> None:
    done: list[int] = []

    async def slow(items: Sequence[int]) -> list[int]:
        await asyncio.sleep(0.01)
        done.extend(items)
        return list(items)

    committer: GroupCommitter[int, int] = GroupCommitter(
        slow, window=0, max_batch=1, in_flight=3, key=lambda i: i
    )
    futures = [asyncio.ensure_future(committer.submit(i)) for i in range(6)]
    await asyncio.sleep(0)
    await committer.close()
    assert sorted(done) == list(range(6))
    assert [f.result() for f in futures] == list(range(6))


async def test_results_go_back_to_their_own_callers() -> None:
    async def double(items: Sequence[int]) -> list[int | BaseException]:
        return [ValueError(i) if i % 5 == 0 else i * 2 for i in items]

    committer: GroupCommitter[int, int] = GroupCommitter(double, window=0, max_batch=4)
    results = await asyncio.gather(
        *(committer.submit(i) for i in range(1, 13)), return_exceptions=True
    )
    for i, r in zip(range(1, 13), results, strict=True):
        assert (isinstance(r, ValueError) and i % 5 == 0) or r == i * 2
    await committer.close()


async def test_the_observer_wraps_each_flush_with_its_items() -> None:
    events: list[tuple[str, list[int]]] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        events.append(("flush", list(items)))
        if 13 in items:
            raise ValueError("boom")
        return list(items)

    @contextlib.contextmanager
    def observe(items: Sequence[int]) -> Iterator[None]:
        events.append(("enter", list(items)))
        try:
            yield
        finally:
            events.append(("exit", list(items)))

    committer: GroupCommitter[int, int] = GroupCommitter(flush, window=0, max_batch=3)
    committer.observer = observe
    results = await asyncio.gather(
        *(committer.submit(i) for i in range(10, 17)), return_exceptions=True
    )
    await committer.close()
    assert [r if isinstance(r, int) else "error" for r in results] == [
        10,
        11,
        12,
        "error",
        "error",
        "error",
        16,
    ]
    # Every item is seen by exactly one flush, and the observer is around that flush
    # (exited even when the flush raised).
    batches = [items for kind, items in events if kind == "flush"]
    assert sorted(i for b in batches for i in b) == list(range(10, 17))
    for items in batches:
        at = events.index(("flush", items))
        assert events[at - 1 : at + 2] == [("enter", items), ("flush", items), ("exit", items)]


# -- two bot processes racing on committed data -------------------------------


@pytest.fixture
async def live(committed: Callable[[], AsyncSession]) -> AsyncIterator[None]:
    async with quiz_data(
        committed, guild_id=GUILD, topic="LiveBatching", questions=1, players=PLAYERS
    ):
        yield


@pytest.mark.parametrize("fast", [False, True])
async def test_two_processes_batching_the_same_clicks_count_each_once(
    live: None, committed: Callable[[], AsyncSession], fast: bool
) -> None:
    bots = [
        _service(committed, batch=16, window_ms=2, fast=fast)  # type: ignore[arg-type]
        for _ in range(2)
    ]
    views = []
    for channel in CHANNELS[:3]:
        view = await bots[0].start(
            guild_id=GUILD,
            guild_name="Live batch",
            channel_id=channel,
            user_id=PLAYERS[0],
            display_name="host",
            mode=models.SessionMode.CHANNEL,
            filters=QuizFilters(topic="LiveBatching", count=1),
        )
        views.append(view)
    rng = random.Random(3)
    clicks = [
        _click(rng.choice(bots), view, user, rng.choice(["Alpha", "Beta"]))
        for view in views
        for user in PLAYERS
        for _ in range(2)  # each member clicks twice, possibly through both processes
    ]
    rng.shuffle(clicks)
    outcomes = await asyncio.gather(*clicks)
    assert sum(o.recorded for o in outcomes) == len(views) * len(PLAYERS)
    async with committed() as s:
        members = await _member_rows(s, GUILD)
        sums = await _answer_sums(s, GUILD)
        assert await roll_ups(s, [GUILD]) == await answer_roll_ups(s, [GUILD])
    for user in PLAYERS:
        points, _xp, answered, correct, streak, best = members[user]
        assert (points, answered, correct) == sums[user]
        assert 0 <= streak <= best <= correct
    assert sum(m[0] for m in members.values()) == sum(o.points for o in outcomes if o.recorded)
    if fast:
        assert sum(bot._writer.fast_batches for bot in bots) > 0
    for bot in bots:
        await bot.close()


async def test_a_race_lost_to_another_process_rolls_back_and_reruns_the_batch(
    bank: None,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quiz = _service(sessionmaker, batch=2)
    view = await _channel_quiz(quiz, CHANNELS[0])
    original = AnswerBatchWriter._check
    attempts: list[int] = []

    async def check_then_race(
        self: AnswerBatchWriter, db: AsyncSession, *args: Any, **kwargs: Any
    ) -> Any:
        accepted = await original(self, db, *args, **kwargs)
        attempts.append(len(accepted))
        if len(attempts) == 1:  # "another process" stores PLAYERS[1]'s answer first
            db.add(
                models.Answer(
                    session_id=view.session_id,
                    question_id=view.question_id,
                    user_id=PLAYERS[1],
                    guild_id=GUILD,
                    topic="Batching",
                    given="Alpha",
                    correct=True,
                    response_ms=1,
                    points=1,
                )
            )
            await db.flush()
        return accepted

    monkeypatch.setattr(AnswerBatchWriter, "_check", check_then_race)
    outcomes = await asyncio.gather(
        _click(quiz, view, PLAYERS[1], "Alpha"), _click(quiz, view, PLAYERS[2], "Alpha")
    )
    # First attempt: the totals would have counted an answer that was not stored, so
    # the batch rolled back (taking the stand-in's row with it) and ran again.
    assert attempts == [2, 2]
    assert all(o.recorded for o in outcomes)
    members = await _member_rows(session, GUILD)
    sums = await _answer_sums(session, GUILD)
    for user in PLAYERS[1:3]:
        assert (members[user][0], members[user][2], members[user][3]) == sums[user]
    assert await roll_ups(session, [GUILD]) == await answer_roll_ups(session, [GUILD])


def _between_fast_statements(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[], Awaitable[None]]
) -> list[bool]:
    """Run `action` after the fast path's step 1, before its step 3.

    Returns:
        Filled with each step 1's `lock` flag (False: the fast path; True: locked).
    """
    original = AnswerBatchWriter._check
    checks: list[bool] = []

    async def check_then_act(
        self: AnswerBatchWriter, db: AsyncSession, *args: Any, lock: bool, **kwargs: Any
    ) -> Any:
        accepted = await original(self, db, *args, lock=lock, **kwargs)
        checks.append(lock)
        if not lock:
            await action()
        return accepted

    monkeypatch.setattr(AnswerBatchWriter, "_check", check_then_act)
    return checks


async def test_an_answer_stored_by_another_process_between_the_fast_statements(
    live: None, committed: Callable[[], AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    quiz = _service(committed, batch=2, fast=True)  # type: ignore[arg-type]
    view = await quiz.start(
        guild_id=GUILD,
        guild_name="Live batch",
        channel_id=CHANNELS[0],
        user_id=PLAYERS[0],
        display_name="host",
        mode=models.SessionMode.CHANNEL,
        filters=QuizFilters(topic="LiveBatching", count=1),
    )

    async def race() -> None:  # "another process" stores PLAYERS[1]'s answer, committed
        async with committed() as other, other.begin():
            other.add(
                models.Answer(
                    session_id=view.session_id,
                    question_id=view.question_id,
                    user_id=PLAYERS[1],
                    guild_id=GUILD,
                    topic="LiveBatching",
                    given="Beta",
                    correct=False,
                    response_ms=1,
                    points=0,
                )
            )

    checks = _between_fast_statements(monkeypatch, race)
    outcomes = await asyncio.gather(
        _click(quiz, view, PLAYERS[1], "Alpha"), _click(quiz, view, PLAYERS[2], "Alpha")
    )
    # The guarded insert stored one of two: the statement failed and wrote nothing,
    # and the locked path found PLAYERS[1]'s answer and counted only PLAYERS[2]'s.
    assert checks == [False, True]
    assert quiz._writer.moved_batches == 1
    assert [(o.recorded, o.reason) for o in outcomes] == [(False, "duplicate"), (True, None)]
    async with committed() as s:
        members = await _member_rows(s, GUILD)
        sums = await _answer_sums(s, GUILD)
        row = await s.get(models.QuizSession, view.session_id)
    assert members[PLAYERS[2]][0] == sums[PLAYERS[2]][0] == outcomes[1].points
    assert PLAYERS[1] not in members or members[PLAYERS[1]][0] == 0
    assert row is not None and row.answered_count == 1  # the other process's counts nothing
    async with committed() as s:
        days, periods = await roll_ups(s, [GUILD])
    # The failed statement wrote no roll-up row: only PLAYERS[2]'s answer is in them.
    assert [key[2] for key in days] == [PLAYERS[2]]
    assert {key[3] for key in periods} == {PLAYERS[2]}
    await quiz.close()


async def test_a_commit_that_leaves_the_checked_columns_alone_does_not_trip_the_fast_path(
    live_two: None, committed: Callable[[], AsyncSession]
) -> None:
    quiz = _service(committed, batch=1, fast=True)  # type: ignore[arg-type]
    view = await _start_live(quiz, CHANNELS[0])
    async with committed() as other:  # a `finish` of another quiz of this member commits
        await other.execute(
            update(models.GuildMember)
            .where(models.GuildMember.guild_id == GUILD, models.GuildMember.user_id == PLAYERS[0])
            .values(
                quizzes_taken=models.GuildMember.quizzes_taken + 1,
                xp=models.GuildMember.xp + 7,
            )
        )
        # Step 1 reads without locks; step 3 waits for the member's row.
        click = _click(quiz, view, PLAYERS[0], "Alpha")
        assert await waits_for_a_lock(committed)
        await other.commit()
    outcome = await click
    assert outcome.recorded
    assert (quiz._writer.fast_batches, quiz._writer.moved_batches) == (1, 0)
    async with committed() as s:
        member = await s.get(models.GuildMember, (GUILD, PLAYERS[0]))
        assert member is not None
        # Both writes count: step 3 updated the row the other transaction committed.
        rewards = sum(a.xp_reward for a in outcome.achievements)
        assert (member.quizzes_taken, member.xp) == (1, 7 + outcome.xp + rewards)
        assert member.points == outcome.points
    await quiz.close()


async def test_a_member_deleted_between_the_fast_statements_sends_the_batch_the_locked_way(
    live_two: None, committed: Callable[[], AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    quiz = _service(committed, batch=1, fast=True)  # type: ignore[arg-type]
    view = await _start_live(quiz, CHANNELS[0])
    await _click(quiz, view, PLAYERS[1], "Beta")  # PLAYERS[1] is a member now
    view2 = await _start_live(quiz, CHANNELS[1])

    async def delete_my_data() -> None:  # commits between the two statements
        async with committed() as other, other.begin():
            await other.execute(delete(models.User).where(models.User.user_id == PLAYERS[1]))

    _between_fast_statements(monkeypatch, delete_my_data)
    outcome = await _click(quiz, view2, PLAYERS[1], "Alpha")
    # Step 3 found no member row and wrote nothing; the locked path made the rows anew
    # (as for any first-time player) and counted the answer there.
    assert quiz._writer.moved_batches == 1
    assert outcome.recorded
    async with committed() as s:
        assert (await _member_rows(s, GUILD))[PLAYERS[1]][0] == outcome.points
        assert (await _answer_sums(s, GUILD))[PLAYERS[1]] == (outcome.points, 1, 1)
    await quiz.close()


@pytest.mark.parametrize("fast", [True, False])
async def test_first_answers_of_new_users_users_of_another_guild_and_members_in_one_batch(
    live_two: None,
    committed: Callable[[], AsyncSession],
    fast: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Step 1 creates user and member rows only for the members it does not find: one
    # batch holds a new user, a user who is a member of another guild only, and a
    # member of this guild on a streak.
    new, elsewhere, member = PLAYERS[1], PLAYERS[2], PLAYERS[3]
    async with committed() as s, s.begin():
        s.add(models.Guild(guild_id=OTHER_GUILD, name="Other"))
        s.add_all([models.User(user_id=u, name=f"old {u % 1000}") for u in (elsewhere, member)])
        s.add(models.GuildMember(guild_id=OTHER_GUILD, user_id=elsewhere, display_name="e"))
        s.add(
            models.GuildMember(
                guild_id=GUILD, user_id=member, display_name="m", answer_streak=3, best_streak=3
            )
        )
    try:
        quiz = _service(committed, batch=3, fast=fast)  # type: ignore[arg-type]
        view = await _start_live(quiz, CHANNELS[0])
        outcomes = await asyncio.gather(
            *(_click(quiz, view, u, "Alpha") for u in (new, elsewhere, member))
        )
        assert all(o.recorded for o in outcomes)
        # Written as one batch, not after its failure one answer at a time.
        assert "one by one" not in caplog.text
        # The streak read from the member's row: one more right answer after three.
        assert [o.streak for o in outcomes] == [1, 1, 4]
        if fast:  # first answers do not send a batch the locked way
            assert (quiz._writer.fast_batches, quiz._writer.moved_batches) == (1, 0)
        async with committed() as s:
            rows = await _member_rows(s, GUILD)
            for user, outcome in zip((new, elsewhere, member), outcomes, strict=True):
                rewards = sum(a.xp_reward for a in outcome.achievements)
                assert rows[user][:4] == (outcome.points, outcome.xp + rewards, 1, 1)
            assert (await _member_rows(s, OTHER_GUILD))[elsewhere][2] == 0
            users = select(models.User.user_id, models.User.name).where(
                models.User.user_id.in_((new, elsewhere, member))
            )
            names = {user: name for user, name in await s.execute(users)}
            # Step 3 writes every answering user's current name.
            assert names == {u: f"p{u % 1000}" for u in (new, elsewhere, member)}
        await quiz.close()
    finally:
        async with committed() as s, s.begin():
            await s.execute(delete(models.Guild).where(models.Guild.guild_id == OTHER_GUILD))


async def test_the_locked_step_1_locks_the_users(
    live_two: None, committed: Callable[[], AsyncSession]
) -> None:
    # Step 1 of the transactional path locks sessions, members and users, in that
    # order, before anything is written; the users' locks run only because a column
    # of the statement reads them (a CTE that nothing references never runs).
    quiz = _service(committed, batch=1)  # type: ignore[arg-type]
    view = await _start_live(quiz, CHANNELS[0])  # the host has a user row now
    async with committed() as other:
        await other.execute(
            update(models.User).where(models.User.user_id == PLAYERS[0]).values(name="renamed")
        )
        click = _click(quiz, view, PLAYERS[0], "Alpha")
        # Step 1 itself waits (its text names the batch's columns), not the write after it.
        assert await waits_for_a_lock(committed, "AS v(ord, session_id")
        await other.commit()
    outcome = await click
    assert outcome.recorded
    await quiz.close()


async def test_advance_is_one_statement_and_moves_once(
    bank: None, sessionmaker: async_sessionmaker[AsyncSession], connection: AsyncConnection
) -> None:
    quiz = _service(sessionmaker, batch=None)
    view = await _channel_quiz(quiz, CHANNELS[0])  # two questions
    await quiz.question(view.question_id)
    with count_statements(connection) as log:
        second = await quiz.advance(view.session_id, view.position)
    assert second is not None and second.position == 1
    session_statements = [st for st in log.statements if "FROM questions" not in st]
    # UPDATE ... RETURNING the moved session (the next question's text may be a
    # cache miss here: a running bot usually has it).
    assert len(session_statements) == 1, log.statements
    again = await quiz.advance(view.session_id, view.position)  # a late second caller
    assert again is not None and again.position == 1
    assert await quiz.advance(view.session_id, 1) is None  # no third question


# -- a batch that waited for a row lock sees what the lock holder committed -----


@pytest.fixture
async def live_two(committed: Callable[[], AsyncSession]) -> AsyncIterator[None]:
    """Committed data for races with another transaction: a guild and two questions."""
    async with quiz_data(
        committed, guild_id=GUILD, topic="LockWaits", questions=2, players=PLAYERS
    ):
        yield


async def _start_live(quiz: QuizService, channel: int) -> QuestionView:
    return await quiz.start(
        guild_id=GUILD,
        guild_name="LockWaits",
        channel_id=channel,
        user_id=PLAYERS[0],
        display_name="host",
        mode=models.SessionMode.CHANNEL,
        filters=QuizFilters(topic="LockWaits", count=2),
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": models.SessionStatus.FINISHED}, "finished"),
        ({"position": 1}, "not_current"),
    ],
)
@pytest.mark.parametrize(("batch", "fast"), [(1, False), (1, True), (None, False)])
async def test_an_answer_waiting_for_finish_or_advance_is_refused_after_their_commit(
    live_two: None,
    committed: Callable[[], AsyncSession],
    change: dict[str, Any],
    reason: str,
    batch: int | None,
    fast: bool,
) -> None:
    # The fast path reads the session before the change commits, then waits for its
    # lock in step 3, finds it moved, writes nothing and runs the locked path.
    quiz = _service(committed, batch=batch, fast=fast)  # type: ignore[arg-type]
    view = await _start_live(quiz, CHANNELS[0])
    async with committed() as other:  # `finish` / `advance` in another task or process
        await other.execute(
            update(models.QuizSession)
            .where(models.QuizSession.id == view.session_id)
            .values(**change)
        )
        click = _click(quiz, view, PLAYERS[1], "Alpha")
        assert await waits_for_a_lock(committed)
        await other.commit()
    outcome = await click
    assert (outcome.recorded, outcome.reason) == (False, reason)
    if fast:
        assert quiz._writer.moved_batches == 1  # found moved, then refused on the locked path
    async with committed() as s:
        assert await _answer_sums(s, GUILD) == {}
        row = await s.get(models.QuizSession, view.session_id)
        assert row is not None and row.answered_count == 0
    await quiz.close()


@pytest.mark.parametrize("fast", [False, True])
async def test_a_streak_committed_while_the_batch_waited_scores_like_one_by_one(
    live_two: None, committed: Callable[[], AsyncSession], fast: bool
) -> None:
    # Fast path: step 1 read a streak of zero and scored on it; step 3 finds four.
    quiz = _service(committed, batch=1, fast=fast)  # type: ignore[arg-type]
    view = await _start_live(quiz, CHANNELS[0])
    async with committed() as other:  # another process's batch of this member commits
        await other.execute(
            update(models.GuildMember)
            .where(models.GuildMember.guild_id == GUILD, models.GuildMember.user_id == PLAYERS[0])
            .values(answer_streak=4, best_streak=4)
        )
        click = _click(quiz, view, PLAYERS[0], "Alpha")
        assert await waits_for_a_lock(committed)
        await other.commit()
    outcome = await click
    # What one by one gives on a streak of four (an hour late: the slowest speed factor).
    expected = score_answer(
        ScoringConfig(),
        difficulty=models.Difficulty.MEDIUM,
        correct=True,
        response_ms=3_600_000,
        time_limit_s=view.time_limit,
        streak_before=4,
    )
    assert (outcome.recorded, outcome.points, outcome.streak) == (True, expected.points, 5)
    assert quiz._writer.moved_batches == (1 if fast else 0)
    async with committed() as s:
        assert (await _member_rows(s, GUILD))[PLAYERS[0]][0] == expected.points
    await quiz.close()


@pytest.mark.parametrize("batch", [1, None])
async def test_an_answer_needs_one_connection_even_when_the_settings_are_not_cached(
    live_two: None, committed: Callable[[], AsyncSession], database_url: str, batch: int | None
) -> None:
    """The guild's settings used to be loaded (through the cache, from the database on a
    miss) inside the answer's open transaction: a second connection per answer, so a
    pool of N connections and N answers after a restart waited for each other."""
    starter = _service(committed, batch=None)  # type: ignore[arg-type]
    scoring = {"base_points": {"medium": 1000}}
    await starter.settings.update(GUILD, "Lock waits", {"scoring": scoring})
    view = await _start_live(starter, CHANNELS[0])
    expected = score_answer(
        ScoringConfig.from_settings(scoring),
        difficulty=models.Difficulty.MEDIUM,
        correct=True,
        response_ms=3_600_000,
        time_limit_s=view.time_limit,
        streak_before=0,
    )
    engine = create_engine(
        Settings(db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.5), database_url
    )
    breaker = CircuitBreaker()
    try:
        fresh = _service(create_sessionmaker(engine, breaker), batch=batch)  # cold caches
        outcome = await _click(fresh, view, PLAYERS[1], "Alpha")
        assert (outcome.recorded, outcome.points) == (True, expected.points)  # its settings
        assert breaker.consecutive_failures == 0
        await fresh.close()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("batch", [2, None])
async def test_a_cache_that_cannot_be_told_does_not_fail_committed_answers(
    bank: None, sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession,
    batch: int | None,
) -> None:  # fmt: skip
    quiz = _service(sessionmaker, batch=batch)
    view = await _channel_quiz(quiz, CHANNELS[0])
    # The scores generation can no longer be incremented (as when Redis fails after
    # the commit): the invalidation that follows each write raises.
    await quiz._cache.backend.set(f"gen:{SCORES}:{GUILD}", "not a counter")
    with pytest.raises(Exception):  # noqa: B017 - whatever the backend raises
        await quiz._cache.invalidate(SCORES, GUILD)
    clicks = [(PLAYERS[1], "Alpha"), (PLAYERS[2], "Beta")]
    if batch:
        outcomes = await asyncio.gather(*(_click(quiz, view, u, g) for u, g in clicks))
    else:  # one connection in tests: one transaction at a time
        outcomes = [await _click(quiz, view, u, g) for u, g in clicks]
    assert all(o.recorded for o in outcomes)  # they are stored: telling them otherwise is wrong
    assert (await _answer_sums(session, GUILD)).keys() == {PLAYERS[1], PLAYERS[2]}
    summary = await quiz.finish(view.session_id)
    assert summary.answered == 2 and summary.status is models.SessionStatus.FINISHED
    await quiz.close()


async def test_close_during_a_flush_writes_what_queued_meanwhile_without_waiting() -> None:
    gate, flushing = asyncio.Event(), asyncio.Event()
    batches: list[list[int]] = []

    async def slow(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        flushing.set()
        await gate.wait()
        return [i * 2 for i in items]

    # A window far longer than any test: only close() can make the last batch go.
    committer: GroupCommitter[int, int] = GroupCommitter(slow, window=3600, max_batch=2)
    first = [asyncio.ensure_future(committer.submit(i)) for i in (1, 2)]  # full: flushed
    await flushing.wait()
    late = asyncio.ensure_future(committer.submit(3))  # queued during the flush
    closing = asyncio.ensure_future(committer.close())
    await asyncio.sleep(0)
    gate.set()
    async with asyncio.timeout(30):  # a guard against hanging, not a timing assertion
        await closing
    assert late.done() and late.result() == 6
    assert [await f for f in first] == [2, 4] and batches == [[1, 2], [3]]


async def test_callers_of_a_flush_stopped_by_cancellation_get_an_error_not_a_cancel() -> None:
    started = asyncio.Event()

    async def stuck(items: Sequence[int]) -> list[int]:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    committer: GroupCommitter[int, int] = GroupCommitter(stuck, window=0, max_batch=1)
    writing = asyncio.ensure_future(committer.submit(1))
    await started.wait()
    queued = asyncio.ensure_future(committer.submit(2))
    await asyncio.sleep(0)
    runner = committer._runner
    assert runner is not None
    runner.cancel()  # what the event loop's shutdown does to the runner
    results = await asyncio.gather(writing, queued, return_exceptions=True)
    # Nobody cancelled the callers: an error they can report, not a CancelledError
    # that would end their task silently as if it had been cancelled.
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert not writing.cancelled() and not queued.cancelled()
