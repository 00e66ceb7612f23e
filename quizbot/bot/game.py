"""Running quizzes in channels: post a question, wait for the timer (or the solo
player's answer), reveal, move on, summarise. One task per running quiz; the
state lives in the database, so a restarted bot picks every quiz up again."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import discord

from quizbot.bot.components import question_components
from quizbot.bot.embeds import NO_PINGS, outcome_text, question_embed, reveal_embed, summary_embed
from quizbot.models import QuestionKind, SessionMode, SessionStatus
from quizbot.services.quiz import AnswerOutcome, PlayerResult, QuestionView, display_order

if TYPE_CHECKING:
    from quizbot.bot.client import QuizBot

log = logging.getLogger(__name__)
T = TypeVar("T")

# Answer well inside Discord's 3-second deadline; past this, defer first.
RESPOND_WITHIN = 2.0


async def respond_in_time(
    interaction: discord.Interaction[Any],
    work: Awaitable[T],
    *,
    ephemeral: bool = True,
    update: bool = False,
) -> T:
    """Run `work`; if it is not done in time, defer the interaction so it stays valid.

    The caller then replies with `reply` below, which picks the right endpoint; with
    `update` (a button that edits its own message) the deferral promises an edit of that
    message instead of a new one, made with `edit_original_response`.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=RESPOND_WITHIN)
    if not done and not interaction.response.is_done():
        if update:
            await interaction.response.defer()
        else:
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
    return await task


async def reply(
    interaction: discord.Interaction[Any], content: str | None = None, **kwargs: Any
) -> None:
    """Send the answer to an interaction, deferred or not; never pings anyone."""
    kwargs.setdefault("allowed_mentions", NO_PINGS)
    if interaction.response.is_done():
        await interaction.followup.send(content or "", **kwargs)
    else:
        await interaction.response.send_message(content, **kwargs)


class Game:
    """The running quizzes of this bot process."""

    def __init__(self, bot: QuizBot) -> None:
        self.bot = bot
        self._tasks: dict[int, asyncio.Task[None]] = {}
        # Set when a solo player has answered the current question: no need to wait.
        self._answered: dict[tuple[int, int], asyncio.Event] = {}
        self._solo: set[int] = set()
        # The message showing each running quiz's current question.
        self._showing: dict[int, Any] = {}
        # Tests shorten the wait; players always see the guild's timer.
        self.wait_override: float | None = None

    @property
    def quiz(self) -> Any:
        return self.bot.app.quiz

    def running(self) -> set[int]:
        """Session ids with a live task in this process."""
        return {sid for sid, t in self._tasks.items() if not t.done()}

    def launch(self, channel_id: int, view: QuestionView, message_id: int | None = None) -> None:
        """Start (or resume) the task that runs a quiz."""
        if view.session_id in self.running():
            return
        if view.mode is SessionMode.SOLO:
            self._solo.add(view.session_id)
        task = asyncio.create_task(
            self._run(channel_id, view, message_id), name=f"quiz-{view.session_id}"
        )
        self._tasks[view.session_id] = task

    async def stop(self, session_id: int) -> None:
        """Stop running a quiz that was ended elsewhere (/quiz stop).

        The question on screen loses its buttons: nobody can answer a stopped quiz.
        """
        message = self._showing.get(session_id)
        task = self._tasks.get(session_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if message is not None:
            try:
                await message.edit(view=None)
            except discord.HTTPException:
                log.warning("quiz %s: could not remove the buttons", session_id, exc_info=True)

    async def join(self, session_id: int) -> None:
        """Wait until this process has stopped running a quiz (finished, stopped or failed)."""
        task = self._tasks.get(session_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def time_up(self, session_id: int) -> None:
        """End the current question of a running quiz now, as if its timer had run out.

        Works whether or not this process has started waiting on that question yet.
        """
        view = await self.quiz.current(session_id)
        if view is not None:
            self._answered.setdefault((session_id, view.question_id), asyncio.Event()).set()

    async def resume_all(self) -> int:
        """Pick up every quiz the database says is running (after a restart).

        A quiz whose channel is gone is ended cleanly as expired; one that had revealed
        its last question is finished and its summary posted.
        """
        resumed = 0
        for row in await self.quiz.running_sessions():
            if row.id in self.running():
                continue
            try:
                channel = await self._channel(row.channel_id)
                view = await self.quiz.current(row.id)
            except Exception:
                # One broken quiz must not keep the others from resuming.
                log.exception("quiz %s could not be resumed; ending it", row.id)
                channel = view = None
            if channel is not None and view is None and row.position >= len(row.question_ids):
                # Every question was asked and revealed; the bot stopped before the summary.
                try:
                    await self._summarise(channel, row.id)
                except Exception:
                    log.exception("quiz %s: could not post its summary on resume", row.id)
                    await self._expire(row.id)
                continue
            if channel is None or view is None:
                await self._expire(row.id)
                log.info("quiz %s ended on resume: channel or question gone", row.id)
                continue
            self.launch(row.channel_id, view, row.message_id)
            resumed += 1
        return resumed

    async def close(self) -> None:
        """Stop the tasks (the quizzes stay running in the database, to be resumed)."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    async def _channel(self, channel_id: int) -> Any:
        channel = self.bot.get_channel(channel_id)
        if channel is not None:
            return channel
        try:
            return await self.bot.fetch_channel(channel_id)
        except (discord.NotFound, discord.Forbidden):
            return None

    def _seconds_left(self, view: QuestionView) -> float:
        if self.wait_override is not None:
            return self.wait_override
        started = view.started_at or dt.datetime.now(dt.UTC)
        ends = started + dt.timedelta(seconds=view.time_limit)
        return max(0.0, (ends - dt.datetime.now(dt.UTC)).total_seconds())

    async def _run(
        self, channel_id: int, view: QuestionView | None, message_id: int | None
    ) -> None:
        assert view is not None
        session_id = view.session_id
        try:
            channel = await self._channel(channel_id)
            if channel is None:
                log.warning("quiz %s ended: channel %s is gone", session_id, channel_id)
                await self.quiz.finish(session_id, SessionStatus.EXPIRED)
                return
            while view is not None:
                # Before the question is shown, so that an answer or `time_up` can't miss it.
                event = self._answered.setdefault((session_id, view.question_id), asyncio.Event())
                message, view = await self._show(channel, view, message_id)
                self._showing[session_id] = message
                message_id = None  # only the first question of a resume reuses its message
                try:
                    await asyncio.wait_for(event.wait(), timeout=self._seconds_left(view))
                except TimeoutError:
                    pass
                finally:
                    self._answered.pop((session_id, view.question_id), None)
                # Who answered, and the move to the next question: one round trip.
                results, upcoming = await self.quiz.reveal_and_advance(
                    session_id, view.question_id, view.position
                )
                await self._reveal(message, view, results)
                view = upcoming
            await self._summarise(channel, session_id)
        except asyncio.CancelledError:
            raise
        except (discord.NotFound, discord.Forbidden) as exc:
            # The channel vanished or we lost the right to post: end it, don't leave it stuck.
            log.warning(
                "quiz %s ended: cannot post in channel %s (%s)", session_id, channel_id, exc
            )
            await self._expire(session_id)
        except Exception:
            log.exception("quiz %s failed; ending it", session_id)
            await self._expire(session_id)
        finally:
            self._tasks.pop(session_id, None)
            self._solo.discard(session_id)
            self._showing.pop(session_id, None)

    async def _expire(self, session_id: int) -> None:
        """End a quiz that cannot go on; if even that fails (database down, session
        deleted) it is logged, and the quiz is resumed or expired at the next start."""
        try:
            await self.quiz.finish(session_id, SessionStatus.EXPIRED)
        except Exception:
            log.exception("quiz %s: could not mark it expired", session_id)

    async def _summarise(self, channel: Any, session_id: int) -> None:
        """End the quiz (after its last question) and post its summary."""
        summary = await self.quiz.finish(session_id)
        await channel.send(embed=summary_embed(summary), allowed_mentions=NO_PINGS)

    async def _show(
        self, channel: Any, view: QuestionView, message_id: int | None
    ) -> tuple[Any, QuestionView]:
        """Post the question (or, resuming, find its message); the view's clock is the
        one the database keeps, which starts when the question is posted."""
        if message_id is not None:
            # Resuming: the message and its buttons are still there.
            return channel.get_partial_message(message_id), view
        ends = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=view.time_limit)
        message = await channel.send(
            embed=question_embed(view, ends_at=ends),
            view=question_components(view),
            allowed_mentions=NO_PINGS,
        )
        started = await self.quiz.set_message(view.session_id, message.id)
        return message, dataclasses.replace(view, started_at=started or view.started_at)

    async def _reveal(self, message: Any, view: QuestionView, results: list[PlayerResult]) -> None:
        question = await self.quiz.question(view.question_id)
        await message.edit(
            embed=reveal_embed(view, question.answer, question.explanation, results), view=None
        )

    # -- clicks ---------------------------------------------------------------

    async def answer_choice(
        self, interaction: discord.Interaction[Any], session_id: int, question_id: int, index: int
    ) -> None:
        """A choice button was pressed."""
        question = await self.quiz.question(question_id)
        if question.kind is QuestionKind.TRUE_FALSE:
            given = "True" if index == 0 else "False"
        else:
            order = display_order(session_id, question)
            given = order[index] if index < len(order) else ""
        await self._answer(interaction, session_id, question_id, given)

    async def answer_text(
        self, interaction: discord.Interaction[Any], session_id: int, question_id: int, text: str
    ) -> None:
        """A free-text answer came in through the modal."""
        await self._answer(interaction, session_id, question_id, text)

    async def _answer(
        self, interaction: discord.Interaction[Any], session_id: int, question_id: int, given: str
    ) -> None:
        outcome: AnswerOutcome = await respond_in_time(
            interaction,
            self.quiz.answer(
                session_id=session_id,
                question_id=question_id,
                user_id=interaction.user.id,
                display_name=interaction.user.display_name,
                given=given,
            ),
        )
        await reply(interaction, outcome_text(outcome), ephemeral=True)
        if outcome.recorded and session_id in self._solo:
            # The only player has answered: reveal now instead of waiting for the timer.
            event = self._answered.get((session_id, question_id))
            if event is not None:
                event.set()
