"""The schema's rules hold in the database itself, not only in Python."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from quizbot import models
from tests.factories import (
    AnswerFactory,
    GuildFactory,
    GuildMemberFactory,
    QuestionFactory,
    QuizSessionFactory,
    ReviewCardFactory,
    UserAchievementFactory,
)


async def test_every_factory_builds_a_valid_row(session: AsyncSession) -> None:
    member = GuildMemberFactory()
    answer = AnswerFactory()
    award = UserAchievementFactory()
    card = ReviewCardFactory()
    await session.flush()
    assert member.guild_id and member.user_id
    assert answer.id and answer.session_id and answer.question_id
    assert award.code.startswith("test_achievement_")
    assert card.question_id and card.user_id


async def test_same_answer_twice_is_rejected_by_the_database(session: AsyncSession) -> None:
    first = AnswerFactory()
    await session.flush()
    AnswerFactory(session=first.session, question=first.question, user_id=first.user_id)
    with pytest.raises(IntegrityError, match="uq_answers_session_id_question_id_user_id"):
        await session.flush()


async def test_one_active_channel_quiz_per_channel(session: AsyncSession) -> None:
    running = QuizSessionFactory(mode=models.SessionMode.CHANNEL)
    await session.flush()
    # A finished quiz in the same channel does not count.
    QuizSessionFactory(
        mode=models.SessionMode.CHANNEL,
        channel_id=running.channel_id,
        status=models.SessionStatus.FINISHED,
    )
    await session.flush()
    QuizSessionFactory(mode=models.SessionMode.CHANNEL, channel_id=running.channel_id)
    with pytest.raises(IntegrityError, match="uq_quiz_sessions_active_channel"):
        await session.flush()


async def test_one_solo_quiz_per_player_and_channel(session: AsyncSession) -> None:
    first = QuizSessionFactory(mode=models.SessionMode.SOLO)
    await session.flush()
    # Another player may play solo in the same channel.
    QuizSessionFactory(mode=models.SessionMode.SOLO, channel_id=first.channel_id)
    await session.flush()
    QuizSessionFactory(
        mode=models.SessionMode.SOLO,
        channel_id=first.channel_id,
        user=first.user,
        guild=first.guild,
    )
    with pytest.raises(IntegrityError, match="uq_quiz_sessions_active_solo"):
        await session.flush()


async def test_shared_bank_rejects_a_duplicate_question(session: AsyncSession) -> None:
    QuestionFactory(prompt="What is H2O?")
    await session.flush()
    # The same question in a guild's own bank is another scope.
    QuestionFactory(prompt="What is H2O?", guild_id=GuildFactory().guild_id)
    await session.flush()
    QuestionFactory(prompt="What is H2O?")
    with pytest.raises(IntegrityError, match="uq_questions_scope_hash"):
        await session.flush()


async def test_check_constraint_rejects_unknown_difficulty(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError, match="ck_questions_difficulty"):
        await session.execute(
            text(
                "INSERT INTO questions (topic, category, difficulty, kind, prompt, answer,"
                " content_hash) VALUES ('t', 'c', 'tricky', 'free_text', 'p', 'a', 'h')"
            )
        )


async def test_relationships_never_lazy_load(session: AsyncSession) -> None:
    member = GuildMemberFactory()
    await session.flush()
    session.expunge_all()
    loaded = await session.scalar(
        select(models.GuildMember).where(models.GuildMember.user_id == member.user_id)
    )
    assert loaded is not None
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = loaded.user


async def test_deleting_a_user_removes_their_rows(session: AsyncSession) -> None:
    answer = AnswerFactory()
    GuildMemberFactory(user=answer.session.user)
    await session.flush()
    await session.execute(text("DELETE FROM users WHERE user_id = :u"), {"u": answer.user_id})
    left = await session.scalar(
        text(
            "SELECT (SELECT count(*) FROM answers WHERE user_id = :u)"
            " + (SELECT count(*) FROM guild_members WHERE user_id = :u)"
            " + (SELECT count(*) FROM quiz_sessions WHERE user_id = :u)"
        ),
        {"u": answer.user_id},
    )
    assert left == 0
