"""The quiz engine end to end on the real database, without Discord."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from quizbot import models
from quizbot.cache import QuizCache
from quizbot.errors import ActiveSessionError, InvalidInputError, NotFoundError
from quizbot.observability import count_statements
from quizbot.repositories import AchievementRepository, MemberRepository
from quizbot.services import quiz as quiz_module
from quizbot.services.achievements import TOPIC_MASTERY_MIN_ANSWERS, catalogue_rows
from quizbot.services.quiz import (
    PlayerResult,
    QuestionData,
    QuestionView,
    QuizFilters,
    QuizService,
)
from tests.committed_data import quiz_data, waits_for_a_lock
from tests.factories import (
    GuildFactory,
    GuildMemberFactory,
    MemberDayFactory,
    QuestionFactory,
    UserFactory,
)

GUILD = 3_000_000_000_000_001
CHANNEL = 3_000_000_000_000_002
ALICE, BOB, CAROL = 3_000_000_000_000_010, 3_000_000_000_000_011, 3_000_000_000_000_012


@pytest.fixture
def cache() -> QuizCache:
    return QuizCache(QuizCache.memory_backend())


@pytest.fixture
async def quiz(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession, cache: QuizCache
) -> QuizService:
    await AchievementRepository(session=session).sync_catalogue(catalogue_rows())
    GuildFactory(guild_id=GUILD, name="School")
    for i in range(6):
        QuestionFactory(
            topic="Physics",
            category="Mechanics",
            prompt=f"Physics {i}?",
            difficulty=models.Difficulty.EASY if i < 4 else models.Difficulty.HARD,
        )
    for i in range(3):
        QuestionFactory(topic="History", category="Ancient", prompt=f"History {i}?")
    await session.commit()
    return QuizService(sessionmaker, cache, rng=random.Random(3))


async def _start(quiz: QuizService, user: int = ALICE, **filters: object) -> object:
    return await quiz.start(
        guild_id=GUILD,
        guild_name="School",
        channel_id=CHANNEL,
        user_id=user,
        display_name=f"user{user % 100}",
        filters=QuizFilters(**filters),  # type: ignore[arg-type]
    )


async def test_filters_choose_matching_questions(quiz: QuizService) -> None:
    view = await _start(quiz, topic="physics", difficulty="hard", count=5)
    assert view.topic == "Physics" and view.difficulty == models.Difficulty.HARD
    assert view.total == 2  # only two hard physics questions exist
    with pytest.raises(InvalidInputError, match="no questions match"):
        await _start(quiz, user=BOB, topic="Alchemy")


@pytest.mark.parametrize(
    ("field", "value"), [("difficulty", "extreme"), ("count", 0), ("count", 51)]
)
def test_invalid_filters_are_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidInputError):
        QuizFilters(**{field: value})  # type: ignore[arg-type]


async def test_one_solo_quiz_per_player_and_channel(quiz: QuizService) -> None:
    await _start(quiz, topic="History")
    with pytest.raises(ActiveSessionError):
        await _start(quiz, topic="History")
    await _start(quiz, user=BOB, topic="History")  # another player may


async def test_unseen_questions_come_first(quiz: QuizService) -> None:
    first = await _start(quiz, topic="Physics", count=4)
    seen = set()
    view = first
    while view is not None:
        seen.add(view.question_id)
        await quiz.answer(
            session_id=first.session_id,
            question_id=view.question_id,
            user_id=ALICE,
            display_name="alice",
            given="Alpha",
        )
        view = await quiz.advance(first.session_id, view.position)
    await quiz.finish(first.session_id)
    second = await _start(quiz, topic="Physics", count=2)
    row_ids = await _question_ids(quiz, second.session_id)
    assert not set(row_ids) & seen  # 6 physics questions: the 2 unseen ones


async def _question_ids(quiz: QuizService, session_id: int) -> list[int]:
    async with quiz._sessions() as s:
        row = await s.get(models.QuizSession, session_id)
        assert row is not None
        return list(row.question_ids)


async def test_answer_scores_explains_and_counts_once(quiz: QuizService) -> None:
    view = await _start(quiz, topic="History", count=1)
    right = await quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=ALICE,
        display_name="alice",
        given="alpha",
    )
    assert right.recorded and right.correct and right.points >= 50
    assert right.canonical_answer == "Alpha" and right.explanation
    assert {a.code for a in right.achievements} >= {"first_correct"}
    again = await quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=ALICE,
        display_name="alice",
        given="alpha",
    )
    assert not again.recorded and again.reason == "duplicate" and again.points == 0
    intruder = await quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=BOB,
        display_name="bob",
        given="alpha",
    )
    assert intruder.reason == "not_player"
    summary = await quiz.finish(view.session_id)
    assert [(p.user_id, p.answered, p.correct) for p in summary.players] == [(ALICE, 1, 1)]
    late = await quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=ALICE,
        display_name="alice",
        given="alpha",
    )
    assert late.reason == "finished"


async def test_a_stale_button_does_not_answer_the_next_question(quiz: QuizService) -> None:
    view = await _start(quiz, topic="History", count=2)
    nxt = await quiz.advance(view.session_id, view.position)
    assert nxt is not None and nxt.position == 1
    stale = await quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=ALICE,
        display_name="alice",
        given="Alpha",
    )
    assert stale.reason == "not_current"
    # Advancing again from the old position does not skip a question.
    again = await quiz.advance(view.session_id, view.position)
    assert again is not None and again.position == 1
    assert await quiz.advance(view.session_id, 1) is None


async def test_reveal_and_advance_reveals_then_moves_once(quiz: QuizService) -> None:
    view = await quiz.start(
        guild_id=GUILD,
        guild_name="School",
        channel_id=CHANNEL,
        user_id=ALICE,
        display_name="user10",
        mode=models.SessionMode.CHANNEL,
        filters=QuizFilters(topic="History", count=2),
    )
    for user, given in ((ALICE, "Alpha"), (BOB, "Gamma")):
        await quiz.answer(
            session_id=view.session_id,
            question_id=view.question_id,
            user_id=user,
            display_name=f"user{user % 100}",
            given=given,
        )
    results, nxt = await quiz.reveal_and_advance(view.session_id, view.question_id, view.position)
    # Fastest first: Alice answered before Bob; Bob's answer was wrong.
    assert [(r.user_id, r.display_name, r.answered, r.correct) for r in results] == [
        (ALICE, "user10", 1, 1),
        (BOB, "user11", 1, 0),
    ]
    assert results[0].points > 0 and results[1].points == 0
    expected = results
    assert nxt is not None and nxt.position == 1 and nxt.question_id != view.question_id
    # A second caller from the same position gets the same reveal and the question the
    # first one moved to; nothing is skipped.
    again, moved_to = await quiz.reveal_and_advance(view.session_id, view.question_id, 0)
    assert again == expected
    assert moved_to is not None and (moved_to.position, moved_to.question_id) == (
        1,
        nxt.question_id,
    )
    # The last question: its (empty) reveal, and no next question.
    assert await quiz.reveal_and_advance(view.session_id, nxt.question_id, 1) == ([], None)
    await quiz.finish(view.session_id)
    assert await quiz.reveal_and_advance(view.session_id, view.question_id, 0) == (expected, None)
    with pytest.raises(NotFoundError):
        await quiz.reveal_and_advance(-1, view.question_id, 0)


async def test_wrong_answer_breaks_the_streak(quiz: QuizService) -> None:
    view = await _start(quiz, topic="Physics", count=3)
    outcomes = []
    for given in ("Alpha", "Alpha", "Gamma"):
        outcomes.append(
            await quiz.answer(
                session_id=view.session_id,
                question_id=view.question_id,
                user_id=ALICE,
                display_name="alice",
                given=given,
            )
        )
        view = await quiz.advance(view.session_id, view.position) or view
    assert [o.streak for o in outcomes] == [1, 2, 0]
    assert outcomes[1].points > outcomes[0].points * 0.9  # the streak bonus offsets slowness
    assert outcomes[2].points == 0


async def test_choices_keep_one_order_per_session(quiz: QuizService) -> None:
    view = await _start(quiz, topic="History", count=1)
    again = await quiz.current(view.session_id)
    assert again is not None and again.choices == view.choices
    assert sorted(view.choices) == ["Alpha", "Beta", "Delta", "Gamma"]


async def _answer_right(quiz: QuizService, view: QuestionView) -> None:
    """Alice answers the question on show right (the factories' answer is Alpha)."""
    await quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=ALICE,
        display_name="alice",
        given="Alpha",
    )


async def _play_one(quiz: QuizService, topic: str) -> frozenset[str]:
    """Alice's quiz of one question in `topic`, answered right: what its end awarded."""
    view = await _start(quiz, topic=topic, count=1)
    await _answer_right(quiz, view)
    summary = await quiz.finish(view.session_id)
    return frozenset(a.code for a in summary.achievements.get(ALICE, ()))


@pytest.mark.parametrize(("wrong", "mastered"), [(2, True), (3, False)])
async def test_a_quizs_end_counts_topics_over_the_members_days(
    quiz: QuizService, session: AsyncSession, wrong: int, mastered: bool
) -> None:
    """Topics with a correct answer (polymath: 5) and a topic mastered (20 answers at
    >= 90 %: 18 right is enough, 17 is not) are summed over the member's days of every
    topic, this quiz's included."""
    alice = GuildMemberFactory(
        guild=await session.get(models.Guild, GUILD), user=UserFactory(user_id=ALICE)
    )
    await session.flush()
    today = dt.datetime.now(dt.UTC).date()
    for topic in ("Art", "Biology", "Chemistry"):
        MemberDayFactory(member=alice, topic=topic, day=today - dt.timedelta(days=9))
    MemberDayFactory(member=alice, topic="Drama", answers=3, correct=0)  # none right
    short = TOPIC_MASTERY_MIN_ANSWERS - 1  # one answer short, over two days
    MemberDayFactory(
        member=alice, topic="Physics", day=today - dt.timedelta(days=2), answers=9, correct=9
    )
    MemberDayFactory(member=alice, topic="Physics", answers=short - 9, correct=short - 9 - wrong)
    await session.commit()

    # Physics: the 20th answer (right) masters it, unless 3 of the 20 were wrong; 4 topics
    # with a correct one (not Drama).
    first = await _play_one(quiz, "Physics")
    assert ("topic_master" in first) is mastered and "polymath" not in first
    # History is the fifth.
    assert "polymath" in await _play_one(quiz, "History")


async def test_finish_is_idempotent_and_counts_the_quiz_once(
    quiz: QuizService, session: AsyncSession
) -> None:
    view = await _start(quiz, topic="History", count=1)
    await _answer_right(quiz, view)
    first = await quiz.finish(view.session_id)
    second = await quiz.finish(view.session_id)
    assert first.players == second.players
    member = await session.get(models.GuildMember, (GUILD, ALICE), populate_existing=True)
    assert member is not None and member.quizzes_taken == 1
    assert "first_quiz" in {a.code for a in first.achievements.get(ALICE, ())}


async def test_stop_cancels_the_callers_quiz(quiz: QuizService) -> None:
    await _start(quiz, topic="History")
    assert await quiz.stop(channel_id=CHANNEL, user_id=BOB) is None
    summary = await quiz.stop(channel_id=CHANNEL, user_id=ALICE)
    assert summary is not None and summary.status == models.SessionStatus.CANCELLED


async def test_quiz_not_allowed_outside_configured_channels(quiz: QuizService) -> None:
    await quiz.settings.update(GUILD, "School", {"channels": [42]})
    with pytest.raises(InvalidInputError, match="not enabled in this channel"):
        await _start(quiz, topic="History")


async def test_question_pool_is_cached_until_questions_change(
    quiz: QuizService, connection: AsyncConnection, session: AsyncSession, cache: QuizCache
) -> None:
    await quiz.question_pool(GUILD, "History", None, "mixed")
    with count_statements(connection) as log:
        pool = await quiz.question_pool(GUILD, "History", None, "mixed")
    assert log.count == 0 and len(pool) == 3
    QuestionFactory(topic="History", prompt="A new one?")
    await session.commit()
    await cache.invalidate("q", None)
    assert len(await quiz.question_pool(GUILD, "History", None, "mixed")) == 4


# -- concurrency: real, committed transactions on separate connections -------


@pytest.fixture
async def live_quiz(committed: Callable[[], AsyncSession]) -> AsyncIterator[QuizService]:
    async with quiz_data(
        committed,
        guild_id=GUILD + 100,
        topic="LiveTopic",
        questions=2,
        players=[ALICE, BOB, CAROL],
        choices=("Yes", "No", "Maybe", "Never"),
        difficulty=models.Difficulty.EASY,
    ):
        yield QuizService(committed, QuizCache(QuizCache.memory_backend()))  # type: ignore[arg-type]


async def _start_live(
    quiz: QuizService,
    *,
    channel: int,
    count: int,
    mode: models.SessionMode = models.SessionMode.SOLO,
) -> QuestionView:
    """Alice starts a quiz of `count` live questions in the live guild."""
    return await quiz.start(
        guild_id=GUILD + 100,
        guild_name="Live",
        channel_id=channel,
        user_id=ALICE,
        display_name="alice",
        mode=mode,
        filters=QuizFilters(topic="LiveTopic", count=count),
    )


async def test_channel_quiz_with_simultaneous_double_clicks_counts_each_member_once(
    live_quiz: QuizService, committed: Callable[[], AsyncSession]
) -> None:
    guild = GUILD + 100
    view = await _start_live(
        live_quiz, channel=CHANNEL + 100, count=1, mode=models.SessionMode.CHANNEL
    )
    clicks = [
        live_quiz.answer(
            session_id=view.session_id,
            question_id=view.question_id,
            user_id=user,
            display_name=f"u{user % 100}",
            given="Yes",
        )
        for user in (ALICE, BOB, CAROL)
        for _ in range(3)  # everyone clicks three times at once
    ]
    outcomes = await asyncio.gather(*clicks)
    assert sum(o.recorded for o in outcomes) == 3
    assert sum(o.reason == "duplicate" for o in outcomes) == 6
    # Everyone's first correct answer earned "first_correct" exactly once.
    assert sum(a.code == "first_correct" for o in outcomes for a in o.achievements) == 3
    async with committed() as s:
        answers = await s.scalar(
            select(func.count())
            .select_from(models.Answer)
            .where(models.Answer.session_id == view.session_id)
        )
        totals = await s.scalar(
            select(func.sum(models.GuildMember.points)).where(models.GuildMember.guild_id == guild)
        )
        awards = await s.scalar(
            select(func.count())
            .select_from(models.UserAchievement)
            .where(
                models.UserAchievement.guild_id == guild,
                models.UserAchievement.code == "first_correct",
            )
        )
        session_row = await s.get(models.QuizSession, view.session_id)
    assert answers == 3 and awards == 3
    assert session_row is not None and session_row.answered_count == 3
    assert totals == sum(o.points for o in outcomes if o.recorded)
    finished = await asyncio.gather(
        live_quiz.finish(view.session_id), live_quiz.finish(view.session_id)
    )
    assert finished[0].players == finished[1].players
    async with committed() as s:
        quizzes = await s.scalar(
            select(func.sum(models.GuildMember.quizzes_taken)).where(
                models.GuildMember.guild_id == guild
            )
        )
    assert quizzes == 3  # each participant counted once, however many finish calls


async def test_answer_write_is_two_statements(
    quiz: QuizService, connection: AsyncConnection
) -> None:
    view = await _start(quiz, topic="History", count=1)
    await quiz.settings.get(GUILD)  # warm the settings cache like a running bot has
    with count_statements(connection) as log:
        await quiz.answer(
            session_id=view.session_id,
            question_id=view.question_id,
            user_id=ALICE,
            display_name="alice",
            given="Beta",
            now=dt.datetime.now(dt.UTC),
        )
    # context read + the one-statement write (a wrong answer earns no achievement)
    assert log.count == 2, log.statements


def test_a_full_question_memo_drops_its_oldest_question(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quiz_module, "QUESTION_MEMO_SIZE", 3)
    quiz = QuizService.__new__(QuizService)  # _memoise is pure: no database needed
    quiz._question_memo = {}

    def data(question_id: int) -> QuestionData:
        return QuestionData(
            id=question_id,
            topic="t",
            category="c",
            difficulty=models.Difficulty.EASY,
            kind=models.QuestionKind.FREE_TEXT,
            prompt="?",
            choices=(),
            answer="a",
            accepted=(),
            tolerance=None,
            explanation="",
        )

    for question_id in (1, 2, 3, 4):
        quiz._memoise(data(question_id))
    # One question out, not the whole memo (a warmed memo survives a bigger bank).
    assert list(quiz._question_memo) == [2, 3, 4]
    quiz._memoise(data(3))  # already held: nothing goes
    assert list(quiz._question_memo) == [2, 3, 4]


async def test_finishing_costs_the_same_statements_for_one_player_or_many(
    quiz: QuizService, connection: AsyncConnection
) -> None:
    """Quiz counts, achievements and review cards are set-based: no statement per player."""

    async def finish_with(players: list[int], channel: int) -> int:
        view = await quiz.start(
            guild_id=GUILD,
            guild_name="School",
            channel_id=channel,
            user_id=players[0],
            display_name="starter",
            mode=models.SessionMode.CHANNEL,
            filters=QuizFilters(topic="History", count=1),
        )
        for user in players:
            await quiz.answer(
                session_id=view.session_id,
                question_id=view.question_id,
                user_id=user,
                display_name=f"u{user % 100}",
                given="Alpha",
            )
        with count_statements(connection) as log:
            summary = await quiz.finish(view.session_id)
        # Everyone finished a first quiz: every player got "first quiz" in that one statement.
        assert all("first_quiz" in {a.code for a in summary.achievements[u]} for u in players)
        return log.count

    one = await finish_with([ALICE], CHANNEL + 1)
    three = await finish_with([BOB, CAROL, ALICE + 5], CHANNEL + 2)
    assert one == three


async def test_reveal_and_advance_after_another_caller_moved_it_meanwhile(
    live_quiz: QuizService, committed: Callable[[], AsyncSession]
) -> None:
    view = await _start_live(live_quiz, channel=CHANNEL + 101, count=2)
    # Another caller stores Bob's answer and moves the quiz, holding its row until we
    # say so.
    async with committed() as other, other.begin():
        await _store_answer_holding_the_quiz(other, view, guild=GUILD + 100, user_id=BOB)
        await other.execute(
            update(models.QuizSession)
            .where(models.QuizSession.id == view.session_id)
            .values(position=1)
        )
        mine = asyncio.create_task(
            live_quiz.reveal_and_advance(view.session_id, view.question_id, 0)
        )
        # Our statement began before the other commits: it waits for the row's lock.
        assert await waits_for_a_lock(committed, "json_agg") and not mine.done()
    # Nothing was moved by us, and our snapshot still showed position 0: the quiz is
    # read again, and we get the question the other caller moved to. Our snapshot
    # missed Bob's answer too; the fresh count tells, and the reveal shows it.
    results, moved_to = await mine
    assert [(p.user_id, p.points) for p in results] == [(BOB, 90)]
    assert moved_to is not None and moved_to.position == 1
    assert moved_to.question_id != view.question_id


async def test_reveal_shows_an_answer_committed_while_the_move_waited(
    live_quiz: QuizService, committed: Callable[[], AsyncSession]
) -> None:
    _view, results, moved_to = await _reveal_behind_a_batch(
        live_quiz, committed, channel=CHANNEL + 104, count=2
    )
    # The statement's snapshot missed Bob's acknowledged answer; the reveal shows it.
    assert [(p.user_id, p.display_name, p.correct, p.points) for p in results] == [
        (BOB, "bob", 1, 90)
    ]
    assert moved_to is not None and moved_to.position == 1


async def test_the_last_question_s_reveal_closes_it_and_shows_a_late_batch(
    live_quiz: QuizService, committed: Callable[[], AsyncSession]
) -> None:
    # The last question's end waits for the quiz's row too.
    view, results, upcoming = await _reveal_behind_a_batch(
        live_quiz, committed, channel=CHANNEL + 105, count=1
    )
    assert [(p.user_id, p.points) for p in results] == [(BOB, 90)] and upcoming is None
    # Past its end, the quiz takes no more answers to its last question.
    late = await live_quiz.answer(
        session_id=view.session_id,
        question_id=view.question_id,
        user_id=CAROL,
        display_name="carol",
        given="Yes",
    )
    assert not late.recorded and late.reason == "not_current"
    assert await live_quiz.current(view.session_id) is None
    summary = await live_quiz.finish(view.session_id)
    assert (summary.asked, summary.total_questions) == (1, 1)
    assert [p.user_id for p in summary.players] == [BOB]


async def _reveal_behind_a_batch(
    live_quiz: QuizService, committed: Callable[[], AsyncSession], *, channel: int, count: int
) -> tuple[QuestionView, list[PlayerResult], QuestionView | None]:
    """A channel quiz whose first question's reveal begins while a batch holding Bob's
    answer has the quiz's row locked; returns the quiz and what the reveal returned."""
    mode = models.SessionMode.CHANNEL
    view = await _start_live(live_quiz, channel=channel, count=count, mode=mode)
    async with committed() as batch, batch.begin():
        await _store_answer_holding_the_quiz(batch, view, guild=GUILD + 100, user_id=BOB)
        revealing = asyncio.create_task(
            live_quiz.reveal_and_advance(view.session_id, view.question_id, 0)
        )
        # The move began before the batch commits: it waits for the quiz's row.
        assert await waits_for_a_lock(committed, "json_agg") and not revealing.done()
    results, upcoming = await revealing
    return view, results, upcoming


async def _store_answer_holding_the_quiz(
    batch: AsyncSession, view: QuestionView, *, guild: int, user_id: int
) -> None:
    """What an answer batch does for one correct answer, in `batch`'s open transaction:
    the quiz's row stays locked until the caller commits."""
    await MemberRepository(session=batch).ensure(
        guild_id=guild, user_id=user_id, display_name="bob", guild_name="Live"
    )
    await batch.execute(
        update(models.QuizSession)
        .where(models.QuizSession.id == view.session_id)
        .values(answered_count=models.QuizSession.answered_count + 1)
    )
    batch.add(
        models.Answer(
            session_id=view.session_id,
            question_id=view.question_id,
            user_id=user_id,
            guild_id=guild,
            topic="LiveTopic",
            given="Yes",
            correct=True,
            response_ms=1200,
            points=90,
        )
    )
    await batch.flush()


async def test_finish_counts_an_answer_committed_while_it_waited_for_the_quiz(
    live_quiz: QuizService, committed: Callable[[], AsyncSession]
) -> None:
    guild = GUILD + 100
    view = await _start_live(
        live_quiz, channel=CHANNEL + 102, count=1, mode=models.SessionMode.CHANNEL
    )
    # An answer batch stores Bob's answer, holding the quiz's row until it commits.
    async with committed() as batch, batch.begin():
        await _store_answer_holding_the_quiz(batch, view, guild=guild, user_id=BOB)
        ending = asyncio.create_task(live_quiz.finish(view.session_id))
        # The finish began before the batch commits: it waits for the quiz's row.
        assert await waits_for_a_lock(committed, "finished_at = now()") and not ending.done()
    # Its statement's snapshot missed Bob's answer; the newest row's count did not.
    summary = await ending
    assert [
        (p.user_id, p.display_name, p.answered, p.correct, p.points) for p in summary.players
    ] == [(BOB, "bob", 1, 1, 90)]
    async with committed() as s:
        member = await s.get(models.GuildMember, (guild, BOB))
        card = await s.get(models.ReviewCard, (BOB, view.question_id))
    assert member is not None and member.quizzes_taken == 1
    assert card is not None and card.reps == 1


async def test_a_finish_that_waited_for_another_reports_what_the_other_did(
    live_quiz: QuizService, committed: Callable[[], AsyncSession]
) -> None:
    view = await _start_live(live_quiz, channel=CHANNEL + 103, count=1)
    # `/stop` cancels the quiz and holds its row while the game's own finish starts.
    async with committed() as stop, stop.begin():
        await stop.execute(
            update(models.QuizSession)
            .where(models.QuizSession.id == view.session_id)
            .values(status=models.SessionStatus.CANCELLED)
        )
        ending = asyncio.create_task(live_quiz.finish(view.session_id))
        assert await waits_for_a_lock(committed, "finished_at = now()") and not ending.done()
    summary = await ending
    assert summary.status is models.SessionStatus.CANCELLED  # not the snapshot's ACTIVE


async def test_a_question_s_clock_starts_when_its_message_is_posted(
    quiz: QuizService,
) -> None:
    view = await _start(quiz, topic="History", count=2)
    started = await quiz.set_message(view.session_id, 4242)
    assert started is not None and view.started_at is not None
    assert started >= view.started_at
    current = await quiz.current(view.session_id)
    assert current is not None and current.started_at == started
    assert await quiz.set_message(-1, 1) is None
