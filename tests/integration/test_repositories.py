"""Repositories against the real database: results, round trips, error translation."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from quizbot import models
from quizbot.errors import ActiveSessionError, NotFoundError
from quizbot.levels import level_for_xp
from quizbot.observability import count_statements
from quizbot.repositories import (
    AchievementRepository,
    AnswerRepository,
    GuildRepository,
    MemberDelta,
    MemberRepository,
    NewSession,
    QuestionDraw,
    QuestionRepository,
    ReviewRepository,
    SessionRepository,
    aggregate_deltas,
)
from tests.factories import (
    AchievementFactory,
    AnswerFactory,
    GuildFactory,
    GuildMemberFactory,
    MemberDayFactory,
    QuestionFactory,
    QuizSessionFactory,
    ReviewCardFactory,
    UserAchievementFactory,
    UserFactory,
)


async def test_stats_of_a_brand_new_member_is_one_statement_with_zeros(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    guild = GuildFactory()
    await session.flush()
    with count_statements(connection) as log:
        stats = await MemberRepository(session=session).stats(
            guild_id=guild.guild_id, user_id=424242
        )
    assert log.count == 1
    assert not stats.is_member
    assert (stats.points, stats.answered, stats.accuracy, stats.rank) == (0, 0, 0.0, None)
    assert stats.topics == [] and stats.recent_achievements == []


async def test_stats_of_a_member_without_achievements_still_has_a_row(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    member = GuildMemberFactory(points=30, answered=4, correct=3)
    await session.flush()
    with count_statements(connection) as log:
        stats = await MemberRepository(session=session).stats(
            guild_id=member.guild_id, user_id=member.user_id
        )
    assert log.count == 1
    assert stats.is_member and stats.points == 30 and stats.accuracy == 0.75
    assert stats.rank == 1 and stats.members == 1
    assert stats.recent_achievements == []


async def test_stats_rank_matches_the_leaderboard(session: AsyncSession) -> None:
    """Members without points are not ranked (the leaderboard leaves them out too)."""
    guild = GuildFactory()
    idle = GuildMemberFactory(guild=guild, points=0, answered=2, correct=0)
    GuildMemberFactory(guild=guild, points=40)
    GuildMemberFactory(guild=guild, points=40)
    last = GuildMemberFactory(guild=guild, points=5)
    await session.flush()
    repo = MemberRepository(session=session)
    stats = await repo.stats(guild_id=guild.guild_id, user_id=idle.user_id)
    assert stats.is_member and stats.rank is None and stats.members == 3
    stats = await repo.stats(guild_id=guild.guild_id, user_id=last.user_id)
    assert stats.rank == 3 and stats.members == 3


async def test_stats_full_picture_in_one_statement(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    guild = GuildFactory()
    me = GuildMemberFactory(guild=guild, points=50, answered=3, correct=2)
    GuildMemberFactory(guild=guild, points=80)  # ahead of me
    GuildMemberFactory(guild=guild, points=50, user=UserFactory(user_id=1))  # tie, lower id
    GuildMemberFactory(guild=guild, points=10)
    other = GuildMemberFactory(guild=guild)
    await session.flush()
    # Per topic, summed over the member's days (member_daily_points); another member's
    # day is not theirs.
    today = dt.datetime.now(dt.UTC).date()
    MemberDayFactory(member=me, topic="Physics", answers=1, correct=0)
    MemberDayFactory(member=me, topic="Physics", day=today - dt.timedelta(days=3), correct=1)
    MemberDayFactory(member=me, topic="History", answers=1, correct=1)
    MemberDayFactory(member=other, topic="History", answers=9)
    elsewhere = GuildMemberFactory(user=me.user)  # the same user in another guild
    await session.flush()
    MemberDayFactory(member=elsewhere, topic="History", answers=7)
    now = dt.datetime.now(dt.UTC)
    for i in range(7):
        UserAchievementFactory(
            user=me.user,
            guild=guild,
            earned_at=now - dt.timedelta(minutes=i),
        )
    await session.flush()

    with count_statements(connection) as log:
        stats = await MemberRepository(session=session).stats(
            guild_id=guild.guild_id, user_id=me.user.user_id
        )
    assert log.count == 1
    # Competition ranking, as on the leaderboard: the tie at 50 shares rank 2.
    assert stats.rank == 2 and stats.members == 4
    assert [(t.topic, t.answered, t.correct) for t in stats.topics] == [
        ("Physics", 2, 1),
        ("History", 1, 1),
    ]
    assert len(stats.recent_achievements) == 5
    earned = [a.earned_at for a in stats.recent_achievements]
    assert earned == sorted(earned, reverse=True)


def test_aggregate_deltas_sums_repeated_members() -> None:
    rows = aggregate_deltas(
        [
            MemberDelta(1, points=10, xp=5, answered=1, correct=1, quizzes=1),
            MemberDelta(2, points=3),
            MemberDelta(1, points=7, xp=2, answered=1, quizzes=1),
        ]
    )
    assert sorted(rows, key=lambda r: r.user_id) == [
        MemberDelta(1, points=17, xp=7, answered=2, correct=1, quizzes=2),
        MemberDelta(2, points=3),
    ]


async def test_batch_award_with_a_member_twice_loses_nothing(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    guild = GuildFactory()
    alice = GuildMemberFactory(guild=guild, points=5)
    bob = GuildMemberFactory(guild=guild)
    await session.flush()
    repo = MemberRepository(session=session)
    with count_statements(connection) as log:
        updated = await repo.award_batch(
            guild_id=guild.guild_id,
            deltas=[
                MemberDelta(alice.user_id, points=10, xp=30, answered=1, correct=1, quizzes=1),
                MemberDelta(bob.user_id, points=4, xp=4, answered=1),
                MemberDelta(alice.user_id, points=20, xp=30, answered=1, correct=1, quizzes=1),
                MemberDelta(999, points=1),  # not a member: skipped, not an error
            ],
        )
    assert log.count == 1
    assert updated == 2
    rows = {
        m.user_id: m
        for m in (
            await session.scalars(
                select(models.GuildMember)
                .where(models.GuildMember.guild_id == guild.guild_id)
                .execution_options(populate_existing=True)
            )
        ).all()
    }
    assert rows[alice.user_id].points == 35
    assert rows[alice.user_id].quizzes_taken == 2
    assert rows[alice.user_id].answered == 2 and rows[alice.user_id].correct == 2
    assert rows[alice.user_id].level == level_for_xp(60)
    assert rows[bob.user_id].points == 4
    user = await session.get(models.User, alice.user_id, populate_existing=True)
    assert user is not None and user.points == 30 and user.xp == 60


async def test_add_points_is_sql_arithmetic_and_unknown_member_is_not_found(
    session: AsyncSession,
) -> None:
    member = GuildMemberFactory(points=7, xp=45)
    await session.flush()
    repo = MemberRepository(session=session)
    assert (
        await repo.add_points(guild_id=member.guild_id, user_id=member.user_id, points=5, xp=5)
        == 12
    )
    refreshed = await session.get(
        models.GuildMember, (member.guild_id, member.user_id), populate_existing=True
    )
    assert refreshed is not None and refreshed.level == 2
    with pytest.raises(NotFoundError):
        await repo.add_points(guild_id=member.guild_id, user_id=1, points=1)


async def test_ensure_member_creates_guild_user_and_member_in_one_statement(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    repo = MemberRepository(session=session)
    with count_statements(connection) as log:
        await repo.ensure(guild_id=77, user_id=88, display_name="Ada", guild_name="Lab")
    assert log.count == 1
    await repo.ensure(guild_id=77, user_id=88, display_name="Ada L.")
    member = await session.get(models.GuildMember, (77, 88), populate_existing=True)
    assert member is not None and member.display_name == "Ada L."
    guild = await session.get(models.Guild, 77)
    assert guild is not None and guild.name == "Lab"


async def test_achievement_award_reports_only_new_awards(session: AsyncSession) -> None:
    member = GuildMemberFactory()
    first, second = AchievementFactory(), AchievementFactory()
    await session.flush()
    repo = AchievementRepository(session=session)
    args = {"user_id": member.user_id, "guild_id": member.guild_id}
    assert await repo.award(**args, codes=[first.code]) == [first.code]
    assert sorted(await repo.award(**args, codes=[first.code, second.code])) == [second.code]
    assert await repo.award(**args, codes=[first.code, second.code]) == []
    assert len(await repo.earned(**args)) == 2


async def test_question_import_skips_duplicates_and_filters_pools(session: AsyncSession) -> None:
    guild = GuildFactory()
    await session.flush()
    repo = QuestionRepository(session=session)
    base = {
        "category": "Mechanics",
        "kind": models.QuestionKind.FREE_TEXT,
        "answer": "newton",
        "explanation": "SI unit of force.",
    }
    rows = [
        {**base, "topic": "Physics", "prompt": "Unit of force?", "difficulty": "easy"},
        {**base, "topic": "Physics", "prompt": "unit  of FORCE?", "difficulty": "easy"},
        {**base, "topic": "Physics", "prompt": "Unit of work?", "difficulty": "hard"},
        {
            **base,
            "topic": "Physics",
            "prompt": "Own one",
            "difficulty": "easy",
            "guild_id": guild.guild_id,
        },
    ]
    assert await repo.add_many(rows) == (3, 1)
    assert len(await repo.pool_ids(guild_id=None, topic="physics")) == 2
    assert len(await repo.pool_ids(guild_id=guild.guild_id, topic="Physics")) == 3
    hard = await repo.pool_ids(
        guild_id=guild.guild_id, topic="Physics", difficulty=models.Difficulty.HARD
    )
    assert len(hard) == 1
    own = await repo.for_export(guild_id=guild.guild_id)
    await repo.set_enabled(guild_id=guild.guild_id, question_id=own[0].id, enabled=False)
    assert len(await repo.pool_ids(guild_id=guild.guild_id, topic="Physics")) == 2
    shared = await repo.for_export(guild_id=None)
    with pytest.raises(NotFoundError):
        # The shared bank is not a guild's to switch off.
        await repo.set_enabled(guild_id=guild.guild_id, question_id=shared[0].id, enabled=False)


async def test_second_channel_quiz_raises_active_session_error(session: AsyncSession) -> None:
    running = QuizSessionFactory(mode=models.SessionMode.CHANNEL)
    await session.flush()
    repo = SessionRepository(session=session)
    with pytest.raises(ActiveSessionError, match="already running"):
        await repo.create(
            models.QuizSession(
                guild_id=running.guild_id,
                channel_id=running.channel_id,
                user_id=running.user_id,
                mode=models.SessionMode.CHANNEL,
                question_ids=[],
            )
        )


async def test_advance_forgets_the_previous_question_message(session: AsyncSession) -> None:
    quiz = QuizSessionFactory(message_id=123, question_ids=[1, 2, 3])
    await session.flush()
    repo = SessionRepository(session=session)
    assert await repo.advance(session_id=quiz.id, from_position=0) == 1
    assert (await repo.require(quiz.id)).message_id is None


async def test_advance_moves_once_for_two_callers(session: AsyncSession) -> None:
    quiz = QuizSessionFactory(question_ids=[1, 2, 3])
    await session.flush()
    repo = SessionRepository(session=session)
    assert await repo.advance(session_id=quiz.id, from_position=0) == 1
    assert await repo.advance(session_id=quiz.id, from_position=0) is None
    (ended,) = await repo.finish_with_answers(session_id=quiz.id)
    assert ended.ended and ended.a_user_id is None  # no answers: one row, answer columns NULL
    (again,) = await repo.finish_with_answers(session_id=quiz.id)
    assert not again.ended and again.status == models.SessionStatus.FINISHED
    assert await repo.finish_with_answers(session_id=-1) == []
    assert (await repo.require(quiz.id)).status == models.SessionStatus.FINISHED
    with pytest.raises(NotFoundError):
        await repo.require(-1)


async def test_finish_returns_the_session_once_and_each_answer_without_it(
    session: AsyncSession,
) -> None:
    quiz = QuizSessionFactory()
    first, second = AnswerFactory(session=quiz), AnswerFactory(session=quiz, correct=False)
    await session.flush()
    rows = await SessionRepository(session=session).finish_with_answers(session_id=quiz.id)
    (ended,) = [r for r in rows if r.ended is not None]
    assert ended.ended and ended.id == quiz.id and ended.a_user_id is None
    answers = sorted((r for r in rows if r.ended is None), key=lambda r: r.a_question_id)
    assert [(a.a_question_id, a.a_correct) for a in answers] == sorted(
        [(first.question_id, True), (second.question_id, False)]
    )
    assert all(a.id is None and a.guild_id is None for a in answers)  # no session columns


async def test_on_a_core_connection_rows_work_and_mapped_objects_are_refused(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    # The hot one-statement paths run repositories on a Core connection. There,
    # `select(Model)` would quietly return plain rows: the methods that load or add
    # mapped objects refuse a connection instead.
    quiz = QuizSessionFactory(question_ids=[1, 2, 3])
    question = QuestionFactory()
    await session.flush()
    repo = SessionRepository(session=connection)
    moved = await repo.advance_returning(session_id=quiz.id, from_position=0)
    assert moved is not None and moved.position == 1
    row = await repo.require_row(quiz.id)
    assert (row.id, row.position, row.question_ids) == (quiz.id, 1, [1, 2, 3])
    with pytest.raises(NotFoundError):
        await repo.require_row(-1)
    with pytest.raises(TypeError, match="needs an ORM session"):
        await repo.require(quiz.id)
    with pytest.raises(TypeError, match="needs an ORM session"):
        await QuestionRepository(session=connection).for_export(guild_id=None)
    with pytest.raises(TypeError, match="needs an ORM session"):
        await QuestionRepository(session=connection).get(question.id)


async def test_answer_record_is_idempotent_and_counts_in_its_utc_day(
    session: AsyncSession,
) -> None:
    quiz = QuizSessionFactory()
    GuildMemberFactory(guild=quiz.guild, user=quiz.user)
    question = QuestionFactory()
    await session.flush()
    await session.execute(text("SET LOCAL TIME ZONE 'Pacific/Kiritimati'"))  # UTC+14
    repo = AnswerRepository(session=session)
    args = {
        "session_id": quiz.id,
        "question_id": question.id,
        "user_id": quiz.user_id,
        "guild_id": quiz.guild_id,
        "topic": question.topic,
        "given": "Alpha",
        "correct": True,
        "response_ms": 900,
        "points": 100,
        "answered_at": dt.datetime(2026, 11, 24, 23, 59, 59, tzinfo=dt.UTC),
    }
    assert await repo.record(**args) is not None
    assert await repo.record(**args) is None
    stored = await session.scalars(
        select(models.Answer.question_id).where(models.Answer.session_id == quiz.id)
    )
    assert list(stored) == [question.id]
    days = await session.execute(
        select(
            models.MemberDailyPoints.day,
            models.MemberDailyPoints.topic,
            models.MemberDailyPoints.points,
            models.MemberDailyPoints.answers,
        ).where(models.MemberDailyPoints.user_id == quiz.user_id)
    )
    assert [tuple(d) for d in days] == [(dt.date(2026, 11, 24), question.topic, 100, 1)]


async def test_guild_settings_merge(session: AsyncSession) -> None:
    guild = GuildFactory(settings={"timer": 20})
    await session.flush()
    repo = GuildRepository(session=session)
    merged = await repo.merge_settings(guild_id=guild.guild_id, changes={"timezone": "UTC"})
    assert merged == {"timer": 20, "timezone": "UTC"}
    assert await repo.settings(guild_id=guild.guild_id) == merged
    with pytest.raises(NotFoundError):
        await repo.merge_settings(guild_id=1, changes={})


async def test_due_review_cards(session: AsyncSession) -> None:
    now = dt.datetime.now(dt.UTC)
    user = UserFactory()
    late = ReviewCardFactory(user=user, due=now - dt.timedelta(days=2))
    ReviewCardFactory(user=user, due=now + dt.timedelta(days=2))
    soon = ReviewCardFactory(user=user, due=now - dt.timedelta(hours=1))
    await session.flush()
    repo = ReviewRepository(session=session)
    due = await repo.due(user_id=user.user_id, now=now)
    assert [c.question_id for c in due] == [late.question_id, soon.question_id]
    late.reps = 3
    await repo.upsert(late)


_DRAW_CHANNELS = itertools.count(10_000)


async def _drawn(
    session: AsyncSession, member: models.GuildMember, candidates: list[int], count: int, **kw: int
) -> list[int]:
    """The questions a drawing start of `member` takes from `candidates`."""
    row = await SessionRepository(session=session).start(
        NewSession(
            guild_id=member.guild_id,
            guild_name="g",
            channel_id=next(_DRAW_CHANNELS),  # one solo quiz per player and channel
            user_id=member.user_id,
            display_name="p",
            mode=models.SessionMode.SOLO,
            questions=QuestionDraw(
                candidates=candidates, count=count, window=kw.get("window", 300)
            ),
            time_limit=30,
            question_started_at=dt.datetime.now(dt.UTC),
        )
    )
    return list(row.question_ids)


async def _answered(
    session: AsyncSession, member: models.GuildMember, ago: list[tuple[models.Question, int]]
) -> None:
    """`member` answered each question so many minutes ago (each in a quiz of its own)."""
    now = dt.datetime.now(dt.UTC)
    for question, minutes in ago:
        quiz = QuizSessionFactory(guild=member.guild, user=member.user, status="finished")
        AnswerFactory(
            session=quiz, question=question, answered_at=now - dt.timedelta(minutes=minutes)
        )
    await session.flush()


async def test_a_start_draws_unseen_questions_first_then_the_least_recently_seen(
    session: AsyncSession,
) -> None:
    member = GuildMemberFactory()
    q = [QuestionFactory() for _ in range(5)]
    # Seen: q[2] just now, q[0] before, q[1] longest ago; q[3] and q[4] never.
    await _answered(session, member, [(q[2], 1), (q[0], 2), (q[1], 3)])
    ids = [x.id for x in q]
    # Unseen first, in the candidates' (random) order, then the seen longest ago first;
    # the one just seen is left out.
    assert await _drawn(session, member, ids, 4) == [ids[3], ids[4], ids[1], ids[0]]
    assert await _drawn(session, member, ids[::-1], 2) == [ids[4], ids[3]]
    # More than the candidates: all of them.
    assert sorted(await _drawn(session, member, ids, 9)) == sorted(ids)


async def test_a_start_ranks_a_question_seen_again_by_its_latest_answer(
    session: AsyncSession,
) -> None:
    member = GuildMemberFactory()
    q = [QuestionFactory() for _ in range(3)]
    # q[0] answered just now and long ago, q[1] before it, q[2] before that.
    await _answered(session, member, [(q[0], 100), (q[0], 1), (q[1], 2), (q[2], 3)])
    ids = [x.id for x in q]
    assert await _drawn(session, member, ids, 1) == [ids[2]]
    assert await _drawn(session, member, ids, 3) == [ids[2], ids[1], ids[0]]
    # Only the last `window` answers count as seen: with one, only q[0] is.
    assert await _drawn(session, member, ids, 3, window=1) == [ids[1], ids[2], ids[0]]


async def test_a_draw_ignores_answers_in_other_guilds(session: AsyncSession) -> None:
    member = GuildMemberFactory()
    elsewhere = GuildMemberFactory(user=member.user)
    q = [QuestionFactory() for _ in range(2)]
    await _answered(session, elsewhere, [(q[0], 1)])
    ids = [x.id for x in q]
    assert await _drawn(session, member, ids, 2) == ids  # q[0] is unseen here
