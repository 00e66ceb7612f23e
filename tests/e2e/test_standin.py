"""End-to-end tests of the Discord stand-in, driven through the real discord.py client.

A tiny bot (slash commands, a button view, a modal) runs against the stand-in; the tests act as
Discord users and assert on what the stand-in recorded, and check that Discord's rules are
enforced the way Discord enforces them (HTTP errors the client raises, plus recorded violations).
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
import pytest_asyncio
from discord import app_commands
from discord.ext import commands
from discord.http import handle_message_parameters
from discord.webhook.async_ import async_context, interaction_response_params

try:
    from tests.discord_standin import Channel, DiscordStandIn, Guild, InvalidInvocation, Member
except ModuleNotFoundError:  # ``tests`` is not importable as a package: use the folder itself
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from discord_standin import Channel, DiscordStandIn, Guild, InvalidInvocation, Member  # type: ignore[no-redef, import-not-found, unused-ignore]

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]

QUIZ_FILE = b'{"questions": [{"q": "2+2?", "a": "4"}]}'


# --- the bot under test ---------------------------------------------------------------------


@dataclass
class Probe:
    """Where the bot's handlers report what happened to them (errors discord.py raised)."""

    slow_delay: float = 0.0
    outcomes: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    async def next(self) -> Any:
        async with asyncio.timeout(5):
            return await self.outcomes.get()


class AnswerModal(discord.ui.Modal, title="Your answer"):
    answer: discord.ui.TextInput[AnswerModal] = discord.ui.TextInput(
        label="Answer", custom_id="answer", max_length=200
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"You answered {self.answer.value}", ephemeral=True)


class QuestionView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Answer", custom_id="quiz:answer", style=discord.ButtonStyle.primary)
    async def answer(
        self, interaction: discord.Interaction, button: discord.ui.Button[QuestionView]
    ) -> None:
        await interaction.response.send_modal(AnswerModal())

    @discord.ui.button(label="Hint", custom_id="quiz:hint")
    async def hint(
        self, interaction: discord.Interaction, button: discord.ui.Button[QuestionView]
    ) -> None:
        button.disabled = True
        await interaction.response.edit_message(content="Hint: it is even", view=self)


def build_bot(guild_id: int, probe: Probe) -> commands.Bot:
    """A minimal quiz bot; syncs its commands to the test guild in ``setup_hook``."""
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.Bot(command_prefix="!", intents=intents)
    quiz = app_commands.Group(name="quiz", description="Play a quiz")

    @quiz.command(name="start", description="Start a quiz")
    @app_commands.describe(topic="Topic", questions="How many questions", file="Your own questions")
    async def start(
        interaction: discord.Interaction,
        topic: str,
        questions: app_commands.Range[int, 1, 10] = 3,
        file: discord.Attachment | None = None,
    ) -> None:
        extra = f" ({len(await file.read())} bytes from {file.filename})" if file else ""
        embed = discord.Embed(title=f"{topic} quiz", description=f"{questions} questions{extra}")
        await interaction.response.send_message(
            f"<@{interaction.user.id}> the quiz begins",
            embed=embed,
            view=QuestionView(),
            allowed_mentions=discord.AllowedMentions(users=False),
        )

    @start.autocomplete("topic")
    async def topic_choices(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        topics = ["Physics", "Philosophy", "Chemistry"]
        return [
            app_commands.Choice(name=t, value=t)
            for t in topics
            if t.lower().startswith(current.lower())
        ]

    @quiz.command(name="report", description="Deferred answer with a file")
    async def report(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        report_file = discord.File(io.BytesIO(b"a,b\n1,2\n"), filename="report.csv")
        await interaction.followup.send("Your report", file=report_file)
        await interaction.followup.send("One more thing")

    @quiz.command(name="slow", description="Responds after a delay")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(probe.slow_delay)
        try:
            await interaction.response.send_message("finally")
        except discord.HTTPException as exc:
            await probe.outcomes.put(exc)

    @quiz.command(name="twice", description="Acknowledges twice")
    async def twice(interaction: discord.Interaction) -> None:
        try:
            await interaction.followup.send("too early")
        except discord.HTTPException as exc:
            await probe.outcomes.put(exc)
        await interaction.response.send_message("first")
        # discord.py refuses a second response locally; send the raw callback to reach "Discord".
        adapter = async_context.get()
        try:
            await adapter.create_interaction_response(
                interaction.id,
                interaction.token,
                session=interaction._session,
                params=interaction_response_params(4, {"content": "second"}),
            )
        except discord.HTTPException as exc:
            await probe.outcomes.put(exc)

    @app_commands.command(name="settings", description="Admins only")
    @app_commands.default_permissions(manage_guild=True)
    async def settings(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Settings", ephemeral=True)

    bot.tree.add_command(quiz)
    bot.tree.add_command(settings)

    async def setup_hook() -> None:
        bot.tree.copy_global_to(guild=discord.Object(id=guild_id))
        await bot.tree.sync(guild=discord.Object(id=guild_id))

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


def error_codes(body: dict[str, Any]) -> set[tuple[str, str]]:
    """Flatten Discord's nested ``errors`` object into {(dotted path, error code)}."""
    found: set[tuple[str, str]] = set()

    def walk(node: dict[str, Any], path: list[str]) -> None:
        for key, value in node.items():
            if key == "_errors":
                found.update((".".join(path), e["code"]) for e in value)
            else:
                walk(value, [*path, key])

    walk(body.get("errors", {}), [])
    return found


# --- fixtures -------------------------------------------------------------------------------


@dataclass
class Scene:
    """A running bot in a guild, with a channel, a plain member and a guild manager."""

    standin: DiscordStandIn
    guild: Guild
    channel: Channel
    alice: Member
    admin: Member
    probe: Probe
    bot: commands.Bot


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn() as instance:
        yield instance


@pytest_asyncio.fixture
async def scene(standin: DiscordStandIn) -> AsyncIterator[Scene]:
    guild = standin.add_guild("Quiz Club")
    channel = standin.add_channel(guild.id, "quiz")
    alice = standin.add_member(guild.id, name="alice")
    admin = standin.add_member(guild.id, name="root", manage_guild=True)
    probe = Probe()
    bot = build_bot(guild.id, probe)
    async with standin.run_client(bot):
        yield Scene(standin, guild, channel, alice, admin, probe, bot)


# --- the happy path -------------------------------------------------------------------------


async def test_slash_command_button_and_modal_round_trip(scene: Scene) -> None:
    standin, guild = scene.standin, scene.guild
    synced = {c.name: c for c in standin.registered_commands(guild.id)}
    assert set(synced) == {"quiz", "settings"}
    assert synced["quiz"].qualified_names() == [
        "quiz start",
        "quiz report",
        "quiz slow",
        "quiz twice",
    ]
    start_options = {o["name"]: o for o in synced["quiz"].options[0]["options"]}
    assert start_options["topic"]["required"] is True
    assert start_options["file"]["type"] == 11

    started = await standin.invoke_command(
        guild.id,
        scene.channel.id,
        scene.alice.id,
        "quiz start",
        options={"topic": "Physics", "questions": 2},
        attachments={"file": ("q.json", QUIZ_FILE)},
    )
    response = await started.wait_response()
    assert response.type_name == "CHANNEL_MESSAGE_WITH_SOURCE"
    assert response.elapsed < standin.response_deadline
    # Recorded exactly as sent: AllowedMentions(users=False) keeps the other defaults.
    assert response.allowed_mentions == {"parse": ["everyone", "roles"], "replied_user": True}
    question = started.original_message
    assert question is not None and not question.ephemeral
    assert question.embeds[0]["title"] == "Physics quiz"
    assert f"({len(QUIZ_FILE)} bytes from q.json)" in question.embeds[0]["description"]
    assert question.custom_ids == ["quiz:answer", "quiz:hint"]
    assert (
        question.pings.users == frozenset()
    )  # mentioned, but allowed_mentions suppressed the ping

    hint = await standin.click(question, "quiz:hint", scene.alice.id)
    assert (await hint.wait_response()).type_name == "UPDATE_MESSAGE"
    assert question.content == "Hint: it is even"
    assert question.revisions[-1].content.endswith("the quiz begins")
    assert (question.component("quiz:hint") or {}).get("disabled") is True

    opened = await standin.click(question, "quiz:answer", scene.alice.id)
    assert (await opened.wait_response()).type_name == "MODAL"
    assert opened.modal is not None and opened.modal["title"] == "Your answer"

    submitted = await standin.submit_modal(opened, scene.alice.id, {"answer": "4"})
    reply = await submitted.wait_original_message()
    assert reply.content == "You answered 4"
    assert reply.ephemeral and reply.visible_to == scene.alice.id

    visible = [m.content for m in standin.messages(scene.channel.id) if not m.ephemeral]
    assert visible == ["Hint: it is even"]
    standin.assert_no_violations()


async def test_deferred_response_then_follow_ups_with_a_file(scene: Scene) -> None:
    standin = scene.standin
    report = await standin.invoke_command(
        scene.guild.id, scene.channel.id, scene.alice.id, "quiz report"
    )
    assert (await report.wait_response()).type_name == "DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE"
    first, second = await report.wait_followups(2)
    # The first follow-up fills the "thinking..." message and keeps the deferral's ephemerality.
    assert first.id == report.original_message_id
    assert first.ephemeral and not first.loading and first.content == "Your report"
    assert [a.filename for a in first.attachments] == ["report.csv"]
    assert standin.attachment_bytes(first.attachments[0].url) == b"a,b\n1,2\n"
    assert second.content == "One more thing" and not second.ephemeral
    standin.assert_no_violations()


async def test_autocomplete_and_permission_gated_command(scene: Scene) -> None:
    standin = scene.standin
    typed = await standin.autocomplete(
        scene.guild.id,
        scene.channel.id,
        scene.alice.id,
        "quiz start",
        focused="topic",
        options={"topic": "ph"},
    )
    await typed.wait_response()
    assert typed.autocomplete_choices == [
        {"name": "Physics", "value": "Physics"},
        {"name": "Philosophy", "value": "Philosophy"},
    ]

    with pytest.raises(InvalidInvocation, match="default_member_permissions"):
        await standin.invoke_command(scene.guild.id, scene.channel.id, scene.alice.id, "settings")
    settings = await standin.invoke_command(
        scene.guild.id, scene.channel.id, scene.admin.id, "settings"
    )
    assert (await settings.wait_response()).ephemeral

    with pytest.raises(InvalidInvocation, match="required option 'topic'"):
        await standin.invoke_command(scene.guild.id, scene.channel.id, scene.alice.id, "quiz start")
    standin.assert_no_violations()


async def test_client_resumes_after_a_dropped_connection(scene: Scene) -> None:
    standin = scene.standin
    await standin.disconnect_client(4000)
    await standin.wait_until(lambda: standin.gateway.resume_count == 1)
    again = await standin.invoke_command(
        scene.guild.id,
        scene.channel.id,
        scene.alice.id,
        "quiz start",
        options={"topic": "Chemistry"},
    )
    await again.wait_response()
    assert standin.gateway.identify_count == 1
    standin.assert_no_violations()


# --- rules Discord enforces -----------------------------------------------------------------


async def test_sync_rejects_invalid_command_name_and_description(scene: Scene) -> None:
    standin, bot, guild = scene.standin, scene.bot, discord.Object(id=scene.guild.id)
    before = [c.name for c in standin.registered_commands(scene.guild.id)]

    @app_commands.command(name="leaderboard", description="x" * 101)
    async def leaderboard(
        interaction: discord.Interaction,
    ) -> None:  # pragma: no cover - never invoked
        pass

    bot.tree.add_command(leaderboard, guild=guild)
    with pytest.raises(discord.HTTPException) as too_long:
        await bot.tree.sync(guild=guild)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert "Must be between 1 and 100 in length" in str(too_long.value)

    leaderboard.description = "Top players"
    leaderboard.name = (
        "Leaderboard"  # discord.py checks names client-side; bypass it to reach the server
    )
    with pytest.raises(discord.HTTPException) as upper:
        await bot.tree.sync(guild=guild)
    assert upper.value.code == 50035 and "Command name is invalid" in str(upper.value)

    assert [
        c.name for c in standin.registered_commands(scene.guild.id)
    ] == before  # nothing applied
    rules = [v.rule for v in standin.violations]
    assert rules == ["commands.invalid", "commands.invalid"]
    # Commands are validated by their index in the overwrite body; the new one is last.
    index = str(len(before))
    assert error_codes(standin.violations[0].body) == {
        (f"{index}.description", "BASE_TYPE_BAD_LENGTH")
    }
    assert error_codes(standin.violations[1].body) == {
        (f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME")
    }


async def test_message_limits_are_enforced(scene: Scene) -> None:
    standin, bot = scene.standin, scene.bot
    channel = bot.get_channel(scene.channel.id)
    assert isinstance(channel, discord.TextChannel)

    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert error_codes(standin.violations[-1].body) == {("content", "BASE_TYPE_MAX_LENGTH")}
    await channel.send("x" * 2000)  # the limit itself is fine

    def rows(count: int, per_row: int = 1, same_id: bool = False) -> list[dict[str, Any]]:
        return [
            {
                "type": 1,
                "components": [
                    {
                        "type": 2,
                        "style": 1,
                        "label": "b",
                        "custom_id": "same" if same_id else f"b{r}-{i}",
                    }
                    for i in range(per_row)
                ],
            }
            for r in range(count)
        ]

    for components, path, code in [
        (rows(6), "components", "BASE_TYPE_MAX_LENGTH"),  # a 6th action row
        (
            rows(1, per_row=6),
            "components.0.components",
            "BASE_TYPE_MAX_LENGTH",
        ),  # a 6th button in a row
        (
            rows(2, same_id=True),
            "components.1.components.0.custom_id",
            "COMPONENT_CUSTOM_ID_DUPLICATED",
        ),
    ]:
        # discord.py's View refuses these layouts locally; send the raw body to reach the server.
        params = handle_message_parameters(content="pick one")
        assert params.payload is not None
        params.payload["components"] = components
        with pytest.raises(discord.HTTPException) as bad:
            await bot.http.send_message(channel.id, params=params)
        assert bad.value.code == 50035
        assert error_codes(standin.violations[-1].body) == {(path, code)}

    with pytest.raises(discord.HTTPException) as empty:
        await channel.send(embeds=[])
    assert empty.value.code == 50006

    big_embed = discord.Embed(title="t" * 256, description="d" * 4096)
    for index in range(3):
        big_embed.add_field(name=f"f{index}", value="v" * 1024)
    with pytest.raises(discord.HTTPException):
        await channel.send(embed=big_embed)
    assert error_codes(standin.violations[-1].body) == {("embeds", "MAX_EMBED_SIZE_EXCEEDED")}

    with pytest.raises(discord.NotFound) as unknown:
        await bot.http.get_channel(12345)
    assert unknown.value.code == 10003

    assert [v.rule for v in standin.violations] == [
        "message.content",
        "message.components",
        "message.components",
        "message.components",
        "message.empty",
        "message.embeds",
    ]
    assert [m.content for m in standin.messages(scene.channel.id)] == ["x" * 2000]


async def test_late_response_gets_unknown_interaction(scene: Scene) -> None:
    standin = scene.standin
    standin.response_deadline = 0.2
    scene.probe.slow_delay = 0.4
    slow = await standin.invoke_command(
        scene.guild.id, scene.channel.id, scene.alice.id, "quiz slow"
    )
    error = await scene.probe.next()
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert slow.response is None and slow.expired
    assert [v.rule for v in standin.violations] == [
        "interaction.unanswered",
        "interaction.response_deadline",
    ]


async def test_second_response_and_early_follow_up_are_rejected(scene: Scene) -> None:
    standin = scene.standin
    twice = await standin.invoke_command(
        scene.guild.id, scene.channel.id, scene.alice.id, "quiz twice"
    )
    early = await scene.probe.next()
    assert isinstance(early, discord.NotFound) and early.code == 10015
    second = await scene.probe.next()
    assert isinstance(second, discord.HTTPException)
    assert (second.status, second.code) == (400, 40060)
    assert twice.original_message is not None and twice.original_message.content == "first"
    assert [v.rule for v in standin.violations] == [
        "interaction.followup_before_response",
        "interaction.already_acknowledged",
    ]
