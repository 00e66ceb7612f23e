"""The quizbot variant: the very service calls the cogs and the game task make."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import event

from bench.metrics import (
    BATCHES,
    BEGIN_GENERIC_PLANS,
    count_held,
    count_ping,
    count_pool_wait,
    count_statement,
    count_tx,
    held_by_current,
    message_key,
)
from bench.workload import Ack, Member, Shown
from quizbot import driver
from quizbot.app import App
from quizbot.config import Settings
from quizbot.db import IdleAwarePing
from quizbot.errors import NothingDueError
from quizbot.models import SessionMode
from quizbot.runtime import tune_garbage_collector
from quizbot.services.answer_batch import PendingAnswer
from quizbot.services.quiz import QuestionView, QuizFilters
from quizbot.services.stats import Period


def settings_with(
    url: str, overrides: dict[str, Any]
) -> tuple[Settings, dict[str, Any], list[str]]:
    """Settings for `url` plus the overrides that exist; returns (settings, applied, skipped).

    An override naming a field `Settings` does not have (yet) is skipped, not an error:
    the ablation is written ahead of the settings it switches.
    """
    fields = Settings.model_fields
    applied = {k: v for k, v in overrides.items() if k in fields}
    skipped = sorted(k for k in overrides if k not in fields)
    # The in-process cache, whatever REDIS_URL says: one process, no network hop.
    settings = Settings(database_url=url, redis_url=None, **applied)
    return settings, applied, skipped


def instrument(app: App) -> None:
    """Count statements, pool waits and pre-pings per command (see bench.metrics), on the
    main engine and on the answer writer's own engine (group-committed batches)."""
    _instrument_engine(app.engine)
    if app.answer_engine is not None:
        _instrument_engine(app.answer_engine)

    # A group-commit flush is recorded once, as a batch covering its answers.
    batcher = app.quiz.answer_batcher
    if batcher is not None:
        limit = batcher.max_batch

        def observe(items: Sequence[PendingAnswer]) -> AbstractContextManager[object]:
            keys = [(i.session_id, i.question_id, i.user_id) for i in items]
            return BATCHES.flush(keys, full=len(items) >= limit)

        batcher.observer = observe

    # So is a flush of question messages (QuizService.set_message).
    writer = app.quiz.message_writer
    message_limit = writer.max_batch

    def observe_messages(
        items: Sequence[tuple[int, int | None]],
    ) -> AbstractContextManager[object]:
        keys = [message_key(session_id, message_id or 0) for session_id, message_id in items]
        return BATCHES.flush(keys, full=len(items) >= message_limit, kind="messages")

    writer.observer = observe_messages


def _instrument_engine(engine: Any) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _count(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        count_statement(statement, parameters)

    # The hot units of work run on the driver (quizbot.driver), past those events.
    def _count_on_driver(statement: str, parameters: Sequence[Any]) -> None:
        if statement == driver.BEGIN_GENERIC_PLANS:
            count_tx(BEGIN_GENERIC_PLANS)
        elif statement in driver.TRANSACTION_CONTROL:
            count_tx(statement.split()[0])  # BEGIN (with its isolation level), COMMIT, ROLLBACK
        else:
            count_statement(statement, parameters)

    driver.listen(engine, _count_on_driver)

    # With asyncpg, SQLAlchemy sends BEGIN before a transaction's first statement and
    # COMMIT / ROLLBACK at its end: each is a round trip (and a batch replays by them).
    # In autocommit (quizbot's read-only sessions) the events fire but nothing is sent.
    for name in ("begin", "commit", "rollback"):
        event.listen(sync_engine, name, functools.partial(_count_tx, name.upper()))

    pool: Any = sync_engine.pool
    do_get = pool._do_get

    def timed_get() -> Any:
        began = time.perf_counter()
        try:
            return do_get()
        finally:
            count_pool_wait(time.perf_counter() - began)

    pool._do_get = timed_get

    # How long each checkout keeps its connection, charged to the command that took it.
    @event.listens_for(sync_engine, "checkout")
    def _taken(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        record.info["bench_taken"] = (time.perf_counter(), held_by_current())

    @event.listens_for(sync_engine, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        taken = record.info.pop("bench_taken", None)
        if taken is not None:
            count_held(taken[1], time.perf_counter() - taken[0])

    # Count the pings actually sent: behind an IdleAwarePing, only its inner ping is one.
    dialect: Any = sync_engine.dialect
    idle_aware = dialect.do_ping if isinstance(dialect.do_ping, IdleAwarePing) else None
    do_ping = idle_aware.ping if idle_aware is not None else dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> Any:
        count_ping()
        return do_ping(dbapi_connection)

    if idle_aware is not None:
        idle_aware.ping = counted_ping
    else:
        dialect.do_ping = counted_ping


def _count_tx(kind: str, conn: Any) -> None:
    # In autocommit (quizbot's one-statement units of work) SQLAlchemy still fires the
    # events, but asyncpg sends nothing: no round trip to count. The mode is the
    # adapter's, whether it is the engine's default or was set at checkout.
    if conn.connection.dbapi_connection.autocommit:
        return
    count_tx(kind)


def _message_id(session_id: int, position: int) -> int:
    """A made-up Discord message id for the question message."""
    return session_id * 64 + position


class QuizbotDriver:
    """Drives `App` exactly as the cogs do (one service call per user event)."""

    def __init__(self, url: str, overrides: dict[str, Any] | None = None) -> None:
        self.settings, self.applied, self.skipped = settings_with(url, overrides or {})
        self.app = App.create(self.settings, url)
        instrument(self.app)
        batcher = self.app.quiz.answer_batcher
        # How long the first answer of a batch waits for others (the raw replay waits too).
        self.batch_window_s = batcher.window if batcher is not None else 0.0

    async def setup(self) -> None:
        await self.app.bootstrap(seed=False, warm=True)  # as the bot does
        tune_garbage_collector()  # as the bot does once started (quizbot.bot.runner)

    async def close(self) -> None:
        await self.app.close()

    async def start(self, m: Member, channel_id: int, mode: str, count: int) -> Shown:
        view = await self.app.quiz.start(
            **_where(m, channel_id), mode=SessionMode(mode), filters=QuizFilters(count=count)
        )
        return await self._posted(view)

    async def review(self, m: Member, channel_id: int, count: int) -> Shown | None:
        try:
            view = await self.app.review.start(**_where(m, channel_id), count=count)
        except NothingDueError:
            return None  # the member is told when their next review is due
        return await self._posted(view)

    async def _posted(self, view: QuestionView) -> Shown:
        # The game posts a quiz's first question, then remembers its message (Game._show).
        await self._set_message(view.session_id, 0)
        return Shown(view.session_id, view.question_id, view.position)

    async def answer(self, m: Member, session_id: int, question_id: int, given: str) -> Ack | None:
        with BATCHES.waiting_for((session_id, question_id, m.user_id)):
            outcome = await self.app.quiz.answer(
                session_id=session_id,
                question_id=question_id,
                user_id=m.user_id,
                display_name=m.name,
                given=given,
            )
        if not outcome.recorded:
            return None
        return Ack(session_id, question_id, m.user_id, outcome.points)

    async def advance(self, session_id: int, question_id: int, position: int) -> Shown | None:
        # What Game._run does when a question's time is up: who answered it and the move
        # on (one statement), the question for the reveal message, then the next
        # question's message remembered.
        _results, view = await self.app.quiz.reveal_and_advance(session_id, question_id, position)
        await self.app.quiz.question(question_id)
        if view is None:
            return None
        await self._set_message(session_id, view.position)
        return Shown(view.session_id, view.question_id, view.position)

    async def _set_message(self, session_id: int, position: int) -> None:
        message_id = _message_id(session_id, position)
        with BATCHES.waiting_for(message_key(session_id, message_id)):
            await self.app.quiz.set_message(session_id, message_id)

    async def finish(self, session_id: int) -> None:
        await self.app.quiz.finish(session_id)

    async def stats(self, m: Member) -> None:
        await self.app.stats.member_stats(guild_id=m.guild_id, user_id=m.user_id)

    async def leaderboard(self, m: Member, week: bool) -> None:
        await self.app.stats.leaderboard(
            guild_id=m.guild_id,
            caller_id=m.user_id,
            period=Period.WEEK if week else Period.ALL,
            limit=10,
        )


def _where(m: Member, channel_id: int) -> dict[str, Any]:
    """Where a member starts a quiz, and who they are, as the cogs pass it."""
    return {
        "guild_id": m.guild_id,
        "guild_name": f"Guild {m.guild_id}",
        "channel_id": channel_id,
        "user_id": m.user_id,
        "display_name": m.name,
    }
