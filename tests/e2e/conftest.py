"""Fixtures for the end-to-end tests of quizbot's own Discord bot.

The real `QuizBot` (its cogs, views and game loop) runs with the real discord.py client against
the local Discord stand-in, over a real PostgreSQL database. The bot works the way it does in
production: many units of work at once from different tasks, each committing. So these tests
cannot use the rolled-back single-connection harness of the other tests (DESIGN §6: tests that
need concurrency open their own connections and clean up). Instead every test gets its own
database, cloned in a fraction of a second from a template that is migrated and loaded once per
run with the achievements catalogue and a small, known question bank.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from quizbot.app import App
from quizbot.bot.client import QuizBot
from quizbot.cache import QuizCache
from quizbot.config import Settings
from quizbot.migrations import upgrade_on
from tests.database import create_database, drop_database, server_url
from tests.discord_standin import Channel, DiscordStandIn, Guild, Member, StoredMessage

# The shared bank every e2e database starts with: few questions, answers the tests know.
BANK: list[dict[str, Any]] = [
    {
        "topic": "Physics",
        "category": "Mechanics",
        "difficulty": "easy",
        "kind": "multiple_choice",
        "prompt": "What is the SI unit of force?",
        "choices": ["Newton", "Joule", "Watt", "Pascal"],
        "answer": "Newton",
        "explanation": "1 N accelerates 1 kg at 1 m/s².",
    },
    {
        "topic": "Physics",
        "category": "Mechanics",
        "difficulty": "easy",
        "kind": "true_false",
        "prompt": "In a vacuum, a heavier ball falls faster than a lighter one.",
        "answer": "False",
        "explanation": "Without air, every body falls with the same acceleration.",
    },
    {
        "topic": "Physics",
        "category": "Optics",
        "difficulty": "medium",
        "kind": "multiple_choice",
        "prompt": "Which colour of visible light has the longest wavelength?",
        "choices": ["Red", "Green", "Blue", "Violet"],
        "answer": "Red",
        "explanation": "Red light is around 700 nm, violet around 400 nm.",
    },
    {
        "topic": "Words",
        "category": "Spelling",
        "difficulty": "easy",
        "kind": "free_text",
        "prompt": "Write the number 7 as an English word.",
        "answer": "seven",
        "explanation": "Seven: s-e-v-e-n.",
    },
    {
        "topic": "Words",
        "category": "Spelling",
        "difficulty": "easy",
        "kind": "free_text",
        "prompt": "Write the number 3 as an English word.",
        "answer": "three",
        "explanation": "Three: t-h-r-e-e.",
    },
]
ANSWERS = {q["prompt"]: q["answer"] for q in BANK}

# Long enough that no question ends by itself while a test is still clicking; the tests end
# questions with `Game.time_up` (or the solo player's answer), never by waiting for a timer.
NEVER = 600.0


def e2e_settings(**values: Any) -> Settings:
    """Settings from arguments only: no .env file, no Redis (an in-process cache per App)."""
    return Settings(_env_file=None, redis_url=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
async def e2e_template() -> AsyncIterator[str]:
    """A migrated database holding the achievements catalogue and `BANK`: cloned per test."""
    url = await create_database(server_url(), prefix="quizbot_e2e_tmpl")
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await upgrade_on(conn)
    finally:
        await engine.dispose()
    app = App.create(e2e_settings(), url, QuizCache(QuizCache.memory_backend()))
    try:
        await app.bootstrap(seed=False, warm=True)  # as the bot runner does
        await app.bank.import_file(
            json.dumps({"questions": BANK}).encode(), filename="bank.json", guild_id=None
        )
    finally:
        await app.close()
    yield url
    await drop_database(url)


@pytest.fixture
async def e2e_database(e2e_template: str) -> AsyncIterator[str]:
    """A fresh database of this test only (a copy of the template), dropped afterwards."""
    template = make_url(e2e_template)
    maintenance = template.set(database="postgres").render_as_string(hide_password=False)
    url = await create_database(maintenance, "quizbot_e2e", template=template.database)
    yield url
    await drop_database(url)


@dataclass
class BotScene:
    """quizbot running against the stand-in in a guild with a quiz channel and four people.

    `db` is a separate engine for arranging and checking data; the bot has its own `App`.
    """

    standin: DiscordStandIn
    database_url: str
    db: AsyncEngine
    guild: Guild
    channel: Channel
    alice: Member
    bob: Member
    carol: Member
    admin: Member
    bot: QuizBot | None = None
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @property
    def running(self) -> QuizBot:
        assert self.bot is not None, "the bot is not running"
        return self.bot

    async def start_bot(self, *, wait: float = NEVER) -> QuizBot:
        """Build a new `App` and `QuizBot` (as `quizbot run` does) and connect it."""
        assert self.bot is None, "stop the running bot first"
        settings = e2e_settings(discord_dev_guild_id=self.guild.id)
        app = App.create(settings, self.database_url, QuizCache(QuizCache.memory_backend()))
        self._stack.push_async_callback(app.close)
        # discord.py waits this long for more GUILD_CREATEs before `on_ready`; the stand-in
        # sends them all at once.
        bot = QuizBot(app, settings, guild_ready_timeout=0.05)
        # Before connecting: quizzes resumed in `on_ready` must already use the short wait.
        bot.game.wait_override = wait
        await self._stack.enter_async_context(self.standin.run_client(bot))
        # Ready as discord.py sees it, and the quizzes that were running are resumed.
        await asyncio.wait_for(bot.quizzes_resumed.wait(), 10)
        self.bot = bot
        return bot

    async def stop_bot(self) -> None:
        """Close the client and release its App, as a process exit would."""
        await self._stack.aclose()
        self._stack = AsyncExitStack()
        self.bot = None

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.db.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.db.begin() as conn:
            await conn.execute(text(sql), params)

    # --- reading the channel ----------------------------------------------------------------

    def public(self) -> list[StoredMessage]:
        """The channel's messages everyone sees, oldest first."""
        return [
            m for m in self.standin.messages(self.channel.id) if not m.ephemeral and not m.loading
        ]

    async def question(self, number: int, total: int) -> StoredMessage:
        """Wait for the message asking question `number` of `total`, buttons and all."""
        title = f"Question {number}/{total} ·"

        def asked(m: StoredMessage) -> bool:
            return (
                not m.ephemeral
                and bool(m.embeds)
                and str(m.embeds[0].get("title", "")).startswith(title)
                and bool(m.custom_ids)
            )

        return await self.standin.wait_for_message(self.channel.id, asked, timeout=10)

    async def revealed(self, message: StoredMessage) -> StoredMessage:
        """Wait until the question message shows the answer (and has no buttons left)."""

        def done() -> bool:
            title = str(message.embeds[0].get("title", "")) if message.embeds else ""
            return title.endswith("· answer") and not message.custom_ids

        await self.standin.wait_until(done, timeout=10)
        return message

    async def summary(self) -> StoredMessage:
        def over(m: StoredMessage) -> bool:
            return bool(m.embeds) and str(m.embeds[0].get("title", "")).startswith("Quiz over")

        return await self.standin.wait_for_message(self.channel.id, over, timeout=10)

    async def session_id(self) -> int:
        """The id of the one quiz started in this test."""
        value = await self.scalar("SELECT max(id) FROM quiz_sessions")
        assert value is not None, "no quiz was started"
        return int(value)

    async def quiz_left_running(self) -> int:
        """alice starts a Physics quiz; once question 1 is shown the bot stops, leaving
        the quiz running in the database. Returns its id."""
        start = await self.standin.invoke_command(
            self.guild.id,
            self.channel.id,
            self.alice.id,
            "quiz start",
            options={"topic": "Physics"},
        )
        await start.wait_original_message()
        await self.question(1, 3)
        session_id = await self.session_id()
        await self.stop_bot()
        return session_id


def button_for(message: StoredMessage, answer: str) -> str:
    """The custom id of the button that gives `answer` ("A: Newton", or "True"/"False")."""
    for button in message.buttons:
        label = str(button.get("label", ""))
        if label == answer or label.endswith(f": {answer}"):
            return str(button["custom_id"])
    raise AssertionError(f"no button for {answer!r} in {[b.get('label') for b in message.buttons]}")


def wrong_button_for(message: StoredMessage, answer: str) -> str:
    right = button_for(message, answer)
    return next(str(b["custom_id"]) for b in message.buttons if b["custom_id"] != right)


def answer_of(message: StoredMessage) -> str:
    """The correct answer to the question a message asks (looked up by its prompt)."""
    prompt = str(message.embeds[0].get("description", ""))
    for known, answer in ANSWERS.items():
        if prompt.startswith(known):
            return answer
    raise AssertionError(f"unknown question: {prompt!r}")


@pytest_asyncio.fixture
async def scene(e2e_database: str) -> AsyncIterator[BotScene]:
    async with DiscordStandIn() as standin:
        guild = standin.add_guild("Quiz Club")
        channel = standin.add_channel(guild.id, "quiz")
        alice = standin.add_member(guild.id, name="alice")
        bob = standin.add_member(guild.id, name="bob")
        carol = standin.add_member(guild.id, name="carol")
        admin = standin.add_member(guild.id, name="root", manage_guild=True)
        db = create_async_engine(e2e_database, poolclass=NullPool)
        world = BotScene(standin, e2e_database, db, guild, channel, alice, bob, carol, admin)
        try:
            await world.start_bot()
            yield world
        finally:
            await world.stop_bot()
            await db.dispose()
