"""End-to-end: /review through the real discord.py client and the stand-in (see conftest)."""

from __future__ import annotations

import pytest

from quizbot.bot.cooldowns import StartCooldown
from tests.discord_standin import InteractionRecord, StoredMessage
from tests.e2e.conftest import BotScene, answer_of, button_for

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]


async def _private_reply(interaction: InteractionRecord) -> StoredMessage:
    reply = await interaction.wait_original_message()
    assert reply.ephemeral
    return reply


def _summaries(scene: BotScene) -> list[StoredMessage]:
    return [
        m
        for m in scene.public()
        if m.embeds and str(m.embeds[0].get("title", "")).startswith("Quiz over")
    ]


async def test_review_asks_the_questions_that_fell_due(scene: BotScene) -> None:
    standin, alice = scene.standin, scene.alice
    # A quiz then a review right after it: no cooldown between starts in this test.
    scene.running.start_cooldown = StartCooldown(0)
    # Nothing answered yet: nothing to review, and the member is told why, privately.
    early = await standin.invoke_command(scene.guild.id, scene.channel.id, scene.bob.id, "review")
    assert "nothing to review yet" in (await _private_reply(early)).content

    # A one-question quiz makes one review card when it ends.
    start = await standin.invoke_command(
        scene.guild.id,
        scene.channel.id,
        alice.id,
        "quiz start",
        options={"topic": "Physics", "category": "Optics", "questions": 1},
    )
    await start.wait_original_message()
    question = await scene.question(1, 1)
    await standin.click(question, button_for(question, answer_of(question)), alice.id)
    await scene.summary()
    cards = await scene.rows("SELECT reps FROM review_cards WHERE user_id = :u", u=alice.id)
    assert [c.reps for c in cards] == [1]

    # A day or more later it is due: /review asks exactly that question.
    await scene.execute(
        "UPDATE review_cards SET due = now() - interval '1 minute' WHERE user_id = :u", u=alice.id
    )
    review = await standin.invoke_command(scene.guild.id, scene.channel.id, alice.id, "review")
    announced = await review.wait_original_message()
    assert "reviewing 1 question due" in announced.content
    due_question = await scene.question(1, 1)
    assert due_question.id != question.id
    assert answer_of(due_question) == answer_of(question)  # the same question, asked again
    click = await standin.click(
        due_question, button_for(due_question, answer_of(due_question)), alice.id
    )
    assert (await _private_reply(click)).content.startswith("✅ **Correct!**")
    # The second "Quiz over" message: the review's summary.
    await standin.wait_until(lambda: len(_summaries(scene)) == 2, timeout=10)
    # Ending the review rescheduled the card: reviewed twice, due again in the future.
    again = await scene.rows(
        "SELECT reps, due > now() AS later FROM review_cards WHERE user_id = :u", u=alice.id
    )
    assert [(c.reps, c.later) for c in again] == [(2, True)]
    standin.assert_no_violations()


async def test_a_review_whose_reply_is_rejected_still_runs(scene: BotScene) -> None:
    """Discord refuses the announcement (the interaction expired): the review still runs,
    rather than stay active, unanswerable, and block the member's next start here."""
    standin, alice = scene.standin, scene.alice
    scene.running.start_cooldown = StartCooldown(0)
    start = await standin.invoke_command(
        scene.guild.id,
        scene.channel.id,
        alice.id,
        "quiz start",
        options={"topic": "Physics", "category": "Optics", "questions": 1},
    )
    await start.wait_original_message()
    question = await scene.question(1, 1)
    await standin.click(question, button_for(question, answer_of(question)), alice.id)
    await scene.summary()
    await scene.execute(
        "UPDATE review_cards SET due = now() - interval '1 minute' WHERE user_id = :u", u=alice.id
    )

    standin.response_deadline = 0.0  # every response arrives "too late"
    review = await standin.invoke_command(scene.guild.id, scene.channel.id, alice.id, "review")
    due_question = await scene.question(1, 1)
    assert due_question.id != question.id
    assert review.response is None
    standin.response_deadline = 3.0
    click = await standin.click(
        due_question, button_for(due_question, answer_of(due_question)), alice.id
    )
    assert (await _private_reply(click)).content.startswith("✅ **Correct!**")
    await standin.wait_until(lambda: len(_summaries(scene)) == 2, timeout=10)
    # Only the late replies to the review command itself.
    assert all(f"/interactions/{review.id}/" in f"{v.path}/" for v in standin.violations)
