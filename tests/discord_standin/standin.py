"""``DiscordStandIn``: the test-facing API of the local Discord stand-in."""

# The waiting helpers take a ``timeout`` argument on purpose: it is the test-facing API.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import discord
from aiohttp import web

from . import cdn, rest_commands, rest_core, rest_interactions, rest_messages
from .discord_patch import DiscordPatch, api_version
from .errors import DiscordHTTPError
from .gateway import Gateway
from .http_api import ApiContext, ApiSettings, make_middleware, make_unhandled_handler
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    InteractionRecord,
)
from .invocation import (
    FileSpec,
    InvalidInvocation,
    build_command_data,
    check_member_can_use,
    find_command,
    interaction_payload,
)
from .models import (
    JSON,
    Channel,
    Guild,
    Member,
    RecordedRequest,
    RegisteredCommand,
    Role,
    StoredMessage,
    User,
    Violation,
)
from .payloads import channel_payload, member_payload
from .permissions import DEFAULT_BOT_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS, Overwrite, Perm
from .user_input import button_data, find_clickable, modal_submit_data, select_data
from .world import INTENT_GUILD_MEMBERS, INTENT_GUILDS, INTENT_MESSAGE_CONTENT, World

T = TypeVar("T")
MessageRef = StoredMessage | int


class DiscordStandIn:
    """A local Discord (REST + gateway + CDN) for end-to-end tests of a real discord.py client.

    Typical use::

        async with DiscordStandIn() as standin:
            guild = standin.add_guild("Test")
            channel = standin.add_channel(guild.id, "general")
            alice = standin.add_member(guild.id, name="alice")
            async with standin.run_client(bot):
                i = await standin.invoke_command(guild.id, channel.id, alice.id, "quiz start")
                await i.wait_response()
            standin.assert_no_violations()

    Every request Discord would reject gets Discord's error reply *and* a ``Violation`` entry.
    """

    def __init__(
        self,
        *,
        application_id: int | None = None,
        bot_name: str = "QuizBot",
        token: str | None = None,
        response_deadline: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        heartbeat_interval_ms: int = 41250,
        patch_discord: bool = True,
    ) -> None:
        """``token``: when set, REST and IDENTIFY accept only this token (else any non-empty one).

        ``response_deadline``/``token_lifetime``: Discord's 3 s and 15 min; shorten them in tests.
        ``patch_discord``: point discord.py's base URLs here on ``start()`` (undone by ``stop()``).
        """
        self.world = World(application_id=application_id, bot_name=bot_name)
        self._settings = ApiSettings(
            response_deadline=response_deadline, token_lifetime=token_lifetime, expected_token=token
        )
        self.gateway = Gateway(self.world, expected_token=lambda: self._settings.expected_token)
        self.gateway.heartbeat_interval_ms = heartbeat_interval_ms
        self.world.emit = self._emit
        self._ctx = ApiContext(self.world, self.gateway, self._settings)
        self._patch_discord = patch_discord
        self._patch: DiscordPatch | None = None
        self._runner: web.AppRunner | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self.base_url = ""

    # --- configuration and records ------------------------------------------------------------

    @property
    def application_id(self) -> int:
        return self.world.application_id

    @property
    def bot_user(self) -> User:
        return self.world.bot

    @property
    def bot_user_id(self) -> int:
        return self.world.bot.id

    @property
    def response_deadline(self) -> float:
        """Seconds the bot has for its initial response (Discord: 3), for later interactions."""
        return self._settings.response_deadline

    @response_deadline.setter
    def response_deadline(self, seconds: float) -> None:
        self._settings.response_deadline = seconds

    @property
    def token_lifetime(self) -> float:
        """Seconds an interaction token serves follow-ups (Discord: 900)."""
        return self._settings.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        self._settings.token_lifetime = seconds

    @property
    def violations(self) -> list[Violation]:
        """Requests Discord would have rejected, and unanswered interactions (may be cleared)."""
        return self.world.violations

    @property
    def error_responses(self) -> list[Violation]:
        """Every error reply sent, including ordinary ones such as 404 Unknown Message."""
        return self.world.error_responses

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.world.requests

    @property
    def unhandled_requests(self) -> list[RecordedRequest]:
        """Requests to endpoints the stand-in does not implement (answered 404, code 0)."""
        return self.world.unhandled_requests

    @property
    def interactions(self) -> list[InteractionRecord]:
        return list(self._ctx.interactions.values())

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v{api_version()}"

    @property
    def gateway_url(self) -> str:
        return self.gateway.url

    @property
    def cdn_base(self) -> str:
        return self.world.cdn_base

    def assert_no_violations(self) -> None:
        """Raise ``AssertionError`` listing every violation recorded so far."""
        if self.violations:
            listing = "\n  ".join(str(v) for v in self.violations)
            raise AssertionError(f"{len(self.violations)} Discord rule violation(s):\n  {listing}")

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on 127.0.0.1 (a free port) and, unless disabled, point discord.py here."""
        if self._runner is not None:
            raise RuntimeError("already started")
        app = web.Application(
            middlewares=[make_middleware(self._ctx)], client_max_size=64 * 1024 * 1024
        )
        app.router.add_get("/gateway-ws", self.gateway.handle)
        app.router.add_routes(cdn.routes(self.world))
        for module in (rest_core, rest_commands, rest_messages, rest_interactions):
            for route in module.routes(self._ctx):
                assert isinstance(route, web.RouteDef)
                for version in (9, 10):
                    app.router.add_route(
                        route.method, f"/api/v{version}{route.path}", route.handler
                    )
        app.router.add_route("*", "/{tail:.*}", make_unhandled_handler(self._ctx))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner
        self.base_url = f"http://127.0.0.1:{port}"
        self.gateway.url = f"ws://127.0.0.1:{port}/gateway-ws"
        self.world.cdn_base = f"{self.base_url}/cdn"
        if self._patch_discord:
            self._patch = DiscordPatch(
                api_base=self.api_base, gateway_url=self.gateway.url, cdn_base=self.cdn_base
            )
            self._patch.apply()

    async def stop(self) -> None:
        """Close gateway connections, stop serving, restore discord.py. Close your client first."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._patch is not None:
            self._patch.restore()
            self._patch = None

    async def __aenter__(self) -> DiscordStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @asynccontextmanager
    async def run_client(
        self, client: discord.Client, token: str = "standin-token", *, ready_timeout: float = 10.0
    ) -> AsyncIterator[discord.Client]:
        """Run ``client.start(token)`` in a task until the block ends; waits until it is ready.

        If the client dies during start-up (e.g. a failing sync in ``setup_hook``), its
        exception is raised here instead of a timeout.
        """
        task = asyncio.get_running_loop().create_task(client.start(token), name="standin-client")
        task.add_done_callback(lambda _: self.world.changes.notify())
        body_failed = False
        try:
            await self.wait_until_ready(timeout=ready_timeout, client_task=task)
            yield client
        except BaseException:
            body_failed = True
            raise
        finally:
            await client.close()
            with suppress(asyncio.CancelledError, TimeoutError):
                try:
                    await asyncio.wait_for(task, 5)
                except Exception:
                    # A client that crashed is a test failure, unless one is already under way.
                    if not body_failed:
                        raise

    async def wait_until_ready(
        self,
        timeout: float = 10.0,
        *,
        client_task: asyncio.Task[Any] | None = None,
    ) -> None:
        """Wait until a client identified and has processed READY and every GUILD_CREATE.

        The stand-in asks for a heartbeat right after the last GUILD_CREATE; the client answers
        with the last sequence it handled, which proves the guilds are in its cache.
        """

        def ready() -> bool:
            if client_task is not None and client_task.done():
                error = client_task.exception() if not client_task.cancelled() else None
                raise RuntimeError(f"the client stopped before it was ready: {error!r}") from error
            return self.gateway.is_ready()

        await self.world.changes.wait_until(ready, timeout, "the client to be ready")

    async def sync_gateway(self, timeout: float = 5.0) -> None:
        """Wait until the client has processed every event dispatched so far."""
        session = self.gateway.active
        if session is None:
            raise RuntimeError("no client is connected")
        target = session.seq
        self.gateway.request_heartbeat()
        await self.world.changes.wait_until(
            lambda: self.gateway.caught_up(target), timeout, "the client to catch up"
        )

    async def disconnect_client(self, code: int = 4000) -> None:
        """Drop the client's gateway connection with ``code``.

        With a resumable code (e.g. 4000) discord.py reconnects and RESUMEs, and the events sent
        meanwhile are replayed. With 1000/1001/4007/4009 the session ends and it identifies anew.
        """
        await self.gateway.disconnect(code)

    # --- guilds, channels, members ------------------------------------------------------------

    def add_user(self, name: str, *, user_id: int | None = None, bot: bool = False) -> User:
        return self.world.add_user(name, user_id=user_id, bot=bot)

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        owner_id: int | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
    ) -> Guild:
        """A guild the bot is in: @everyone role, a managed role for the bot, an owner member."""
        guild = self.world.add_guild(
            name,
            owner_id=owner_id,
            everyone_permissions=everyone_permissions,
            bot_permissions=bot_permissions,
        )
        if self.gateway.active is not None:
            self.gateway.dispatch(
                "GUILD_CREATE", self.gateway.guild_create(guild.id), INTENT_GUILDS
            )
        return guild

    def add_channel(
        self,
        guild_id: int,
        name: str = "general",
        *,
        topic: str | None = None,
        overwrites: Iterable[Overwrite] = (),
    ) -> Channel:
        channel = self.world.add_channel(guild_id, name, topic=topic, overwrites=overwrites)
        self.gateway.dispatch("CHANNEL_CREATE", channel_payload(channel), INTENT_GUILDS)
        return channel

    def add_role(self, guild_id: int, name: str, permissions: int | Perm = 0) -> Role:
        return self.world.add_role(guild_id, name, int(permissions))

    def add_member(
        self,
        guild_id: int,
        user_id: int | None = None,
        name: str | None = None,
        *,
        admin: bool = False,
        manage_guild: bool = False,
        roles: Sequence[int] = (),
        nick: str | None = None,
    ) -> Member:
        """Add a user (created if needed) to a guild; ``admin``/``manage_guild`` grant perms."""
        user = self.world.users.get(user_id) if user_id else None
        if user is None:
            user = self.world.add_user(name or f"user{len(self.world.users)}", user_id=user_id)
        role_ids = list(roles)
        if admin:
            role_ids.append(self._named_role(guild_id, "Admin", Perm.ADMINISTRATOR).id)
        if manage_guild:
            role_ids.append(self._named_role(guild_id, "Manager", Perm.MANAGE_GUILD).id)
        member = self.world.add_member(guild_id, user, roles=role_ids, nick=nick)
        self.gateway.dispatch(
            "GUILD_MEMBER_ADD",
            dict(member_payload(member), guild_id=str(guild_id)),
            INTENT_GUILD_MEMBERS,
        )
        return member

    def _named_role(self, guild_id: int, name: str, permissions: Perm) -> Role:
        for role in self.world.guild(guild_id).roles.values():
            if role.name == name and role.permissions == int(permissions):
                return role
        return self.world.add_role(guild_id, name, int(permissions))

    def guild(self, guild_id: int) -> Guild:
        return self.world.guild(guild_id)

    def channel(self, channel_id: int) -> Channel:
        return self.world.channels[channel_id]

    # --- what the bot did ---------------------------------------------------------------------

    def registered_commands(self, guild_id: int | None = None) -> list[RegisteredCommand]:
        """Commands the client synced: global ones, or those of ``guild_id``."""
        return list(self.world.commands.get(guild_id, []))

    def messages(self, channel_id: int, *, include_deleted: bool = False) -> list[StoredMessage]:
        """Messages in a channel, oldest first, ephemeral ones included (see ``.ephemeral``)."""
        return [
            m
            for m in self.world.channel_message_list(channel_id)
            if include_deleted or not m.deleted
        ]

    def message(self, message_id: int) -> StoredMessage:
        return self.world.messages[message_id]

    def attachment_bytes(self, url: str) -> bytes:
        """The bytes behind a CDN URL the stand-in handed out."""
        attachment_id = int(url.rstrip("/").split("/")[-2])
        return self.world.files[attachment_id].data

    async def wait_until(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Wait until ``predicate()`` is truthy (re-checked on every change); return its value."""
        return await self.world.changes.wait_until(predicate, timeout)

    async def wait_for_message(
        self,
        channel_id: int,
        predicate: Callable[[StoredMessage], bool] | None = None,
        timeout: float = 5.0,
        *,
        include_loading: bool = False,
    ) -> StoredMessage:
        """The first message in the channel (existing or future) matching ``predicate``."""

        def find() -> StoredMessage | None:
            for message in self.messages(channel_id):
                if message.loading and not include_loading:
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        return await self.world.changes.wait_until(
            find, timeout, f"a message in channel {channel_id}"
        )

    # --- what users do ------------------------------------------------------------------------

    async def invoke_command(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | None = None,
        attachments: Mapping[str, FileSpec] | None = None,
        *,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Run the slash command ``name`` ("quiz start" for subcommands) as ``user_id`` would.

        ``options`` maps option names to values (ids or stand-in objects for users, roles,
        channels); ``attachments`` maps attachment option names to ``(filename, bytes[, mime])``.
        Returns once the INTERACTION_CREATE is on the wire (the response clock is running).
        """
        target = find_command(self.world, guild_id, name)
        check_member_can_use(self.world, target.command, guild_id, user_id, channel_id)
        merged: dict[str, Any] = dict(options or {})
        merged.update(attachments or {})
        data = build_command_data(
            self.world, target, guild_id=guild_id, channel_id=channel_id, options=merged
        )
        return await self._send_interaction(
            APPLICATION_COMMAND, data, guild_id, channel_id, user_id, locale=locale, name=name
        )

    async def autocomplete(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        name: str,
        focused: str,
        options: Mapping[str, Any],
        *,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Send an autocomplete request while the user types into option ``focused``."""
        target = find_command(self.world, guild_id, name)
        data = build_command_data(
            self.world,
            target,
            guild_id=guild_id,
            channel_id=channel_id,
            options=options,
            focused=focused,
        )
        return await self._send_interaction(
            AUTOCOMPLETE, data, guild_id, channel_id, user_id, locale=locale, name=name
        )

    async def click(self, message: MessageRef, custom_id: str, user_id: int) -> InteractionRecord:
        """Click the button ``custom_id`` on a message the bot posted."""
        stored, component = find_clickable(self.world, _message_id(message), custom_id, user_id)
        data = button_data(component)
        return await self._send_interaction(
            MESSAGE_COMPONENT,
            data,
            stored.guild_id,
            stored.channel_id,
            user_id,
            custom_id=custom_id,
            source=stored,
        )

    async def select(
        self, message: MessageRef, custom_id: str, user_id: int, values: Sequence[str | int]
    ) -> InteractionRecord:
        """Pick ``values`` in the select menu ``custom_id`` (option values, or entity ids)."""
        stored, component = find_clickable(self.world, _message_id(message), custom_id, user_id)
        data = select_data(self.world, stored, component, values)
        return await self._send_interaction(
            MESSAGE_COMPONENT,
            data,
            stored.guild_id,
            stored.channel_id,
            user_id,
            custom_id=custom_id,
            source=stored,
        )

    async def submit_modal(
        self,
        interaction: InteractionRecord,
        user_id: int,
        values: Mapping[str, str | Sequence[str]],
    ) -> InteractionRecord:
        """Submit the modal the bot opened in answer to ``interaction``; ``values`` by custom_id."""
        modal = interaction.modal
        if modal is None:
            raise InvalidInvocation(f"{interaction} was not answered with a modal")
        if interaction.modal_submitted:
            raise InvalidInvocation("this modal was already submitted")
        if user_id != interaction.user_id:
            raise InvalidInvocation("only the user who triggered the interaction sees its modal")
        data = modal_submit_data(modal, values)
        interaction.modal_submitted = True
        source = interaction.source_message if interaction.type == MESSAGE_COMPONENT else None
        return await self._send_interaction(
            MODAL_SUBMIT,
            data,
            interaction.guild_id,
            interaction.channel_id,
            user_id,
            custom_id=str(modal["custom_id"]),
            source=source,
            parent=interaction,
        )

    async def post_user_message(self, channel_id: int, user_id: int, content: str) -> StoredMessage:
        """A user writes in a channel (MESSAGE_CREATE reaches the bot if its intents allow)."""
        channel = self.world.channels[channel_id]
        user = self.world.users[user_id]
        if (
            channel.guild_id is not None
            and user_id not in self.world.guild(channel.guild_id).members
        ):
            raise InvalidInvocation(f"user {user_id} is not in guild {channel.guild_id}")
        return self.world.create_message(channel, user, {"content": content}, [])

    # --- internals ----------------------------------------------------------------------------

    async def _send_interaction(
        self,
        itype: int,
        data: JSON,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        *,
        locale: str = "en-US",
        name: str | None = None,
        custom_id: str | None = None,
        source: StoredMessage | None = None,
        parent: InteractionRecord | None = None,
    ) -> InteractionRecord:
        if self.gateway.active is None or self.gateway.active.connection is None:
            raise RuntimeError("no client is connected to the stand-in gateway")
        interaction_id = self.world.ids.next()
        token = f"standin.{secrets.token_urlsafe(48)}"
        payload = interaction_payload(
            self.world,
            interaction_id=interaction_id,
            token=token,
            itype=itype,
            data=data,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            locale=locale,
            message=source,
        )
        record = InteractionRecord(
            world=self.world,
            id=interaction_id,
            token=token,
            type=itype,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            payload=payload,
            name=name,
            custom_id=custom_id,
            source_message_id=source.id if source else None,
            parent=parent,
        )
        self._ctx.interactions[interaction_id] = record
        self._ctx.interactions_by_token[token] = record
        loop = asyncio.get_running_loop()
        deadline = self._settings.response_deadline

        def on_sent() -> None:
            record.mark_sent(loop.time())
            timer = loop.call_later(deadline, self._check_answered, record)
            self._timers.add(timer)

        self.gateway.dispatch("INTERACTION_CREATE", payload, on_sent=on_sent)
        await asyncio.wait_for(record.wait_sent(), 5)
        return record

    def _check_answered(self, record: InteractionRecord) -> None:
        """At the deadline: Discord shows "This interaction failed" if nothing was acknowledged."""
        self._timers = {
            t
            for t in self._timers
            if not t.cancelled() and t.when() > asyncio.get_running_loop().time()
        }
        if record.response is not None:
            return
        record.expired = True
        error = DiscordHTTPError(404, 10062, "Unknown interaction")
        violation = Violation(
            rule="interaction.unanswered",
            detail=f"{record} got no initial response within {self.response_deadline}s",
            method="-",
            path=f"/interactions/{record.id}",
            status=error.status,
            code=error.code,
            body=error.body(),
        )
        self.world.violations.append(violation)
        record.errors.append(violation)
        self.world.changes.notify()

    def _emit(self, event: str, data: JSON, intent: int) -> None:
        """World events to the gateway; content withheld as Discord does without MESSAGE_CONTENT."""
        session = self.gateway.active
        if session is None:
            return
        if (
            event in ("MESSAGE_CREATE", "MESSAGE_UPDATE")
            and not session.intents & INTENT_MESSAGE_CONTENT
        ):
            author = int(data["author"]["id"])
            mentioned = any(int(u["id"]) == self.bot_user_id for u in data.get("mentions", []))
            if author != self.bot_user_id and not mentioned and data.get("guild_id"):
                data = dict(data, content="", embeds=[], attachments=[], components=[])
        self.gateway.dispatch(event, data, intent)


def _message_id(message: MessageRef) -> int:
    return message if isinstance(message, int) else message.id
