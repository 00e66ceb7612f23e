"""The gateway: HELLO, IDENTIFY/READY, heartbeats, RESUME, ordered dispatches with sequence numbers.

https://discord.com/developers/docs/events/gateway
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .compression import StreamCompressor, compressor_for
from .models import JSON
from .payloads import guild_create_payload, member_payload, user_payload
from .world import INTENT_GUILD_MEMBERS, World

log = logging.getLogger(__name__)

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE, OP_VOICE = 0, 1, 2, 3, 4
OP_RESUME, OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION = 6, 7, 8, 9
OP_HELLO, OP_HEARTBEAT_ACK = 10, 11

# Close codes the client must not resume after (Discord drops the session).
SESSION_ENDING_CLOSES = {1000, 1001, 4007, 4009}

OnSent = Callable[[], None]


@dataclass
class GatewaySession:
    """A gateway session: survives reconnects (RESUME) and numbers every dispatch."""

    session_id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    acked_seq: int = 0
    ready_seq: int | None = None
    resumable: bool = True
    backlog: list[tuple[int, str]] = field(default_factory=list, repr=False)
    connection: GatewayConnection | None = None
    presence_updates: list[JSON] = field(default_factory=list)


class GatewayConnection:
    """One websocket. A single writer task keeps frames in order through the compressor."""

    def __init__(self, ws: web.WebSocketResponse, compressor: StreamCompressor | None) -> None:
        self.ws = ws
        self._compressor = compressor
        self._queue: asyncio.Queue[tuple[str, OnSent | None] | None] = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name="standin-gateway-writer"
        )

    def send(self, payload: JSON, on_sent: OnSent | None = None) -> None:
        self.send_text(json.dumps(payload), on_sent)

    def send_text(self, text: str, on_sent: OnSent | None = None) -> None:
        self._queue.put_nowait((text, on_sent))

    async def close(self, code: int, message: str = "") -> None:
        self._queue.put_nowait(None)
        await self._writer
        if not self.ws.closed:
            await self.ws.close(code=code, message=message.encode())

    async def _write_loop(self) -> None:
        while (item := await self._queue.get()) is not None:
            text, on_sent = item
            if self.ws.closed:
                continue
            try:
                if self._compressor is None:
                    await self.ws.send_str(text)
                else:
                    await self.ws.send_bytes(self._compressor.compress(text))
            except ConnectionError:
                continue
            if on_sent is not None:
                on_sent()


class Gateway:
    """Serves the gateway websocket and routes events to the (single) connected bot session."""

    def __init__(self, world: World, *, expected_token: Callable[[], str | None]) -> None:
        self.world = world
        self.heartbeat_interval_ms = 41250
        self.url = "ws://127.0.0.1/gateway"
        self.sessions: dict[str, GatewaySession] = {}
        self.active: GatewaySession | None = None
        self.identify_count = 0
        self.resume_count = 0
        self._expected_token = expected_token
        self._connections: set[GatewayConnection] = set()

    # --- dispatching --------------------------------------------------------------------------

    def dispatch(
        self, event: str, data: JSON, intent: int = 0, on_sent: OnSent | None = None
    ) -> int | None:
        """Send a DISPATCH to the session if its intents allow; return its sequence number."""
        session = self.active
        if session is None or (intent and not session.intents & intent):
            return None
        session.seq += 1
        text = json.dumps({"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data})
        session.backlog.append((session.seq, text))
        if session.connection is not None:
            session.connection.send_text(text, on_sent)
        elif on_sent is not None:
            # Not connected: the event waits in the backlog for a RESUME, like on Discord.
            log.debug("queued %s for a resume", event)
        return session.seq

    def request_heartbeat(self) -> None:
        """Ask the client for an immediate heartbeat (op 1). Its ``d`` tells how far it has read."""
        if self.active and self.active.connection:
            self.active.connection.send({"op": OP_HEARTBEAT, "d": None})

    def caught_up(self, seq: int) -> bool:
        return self.active is not None and self.active.acked_seq >= seq

    def is_ready(self) -> bool:
        session = self.active
        return (
            session is not None
            and session.connection is not None
            and session.ready_seq is not None
            and session.acked_seq >= session.ready_seq
        )

    async def disconnect(self, code: int = 4000) -> None:
        session = self.active
        if session and session.connection:
            if code in SESSION_ENDING_CLOSES:
                session.resumable = False
            await session.connection.close(code, "closed by the stand-in")

    async def close_all(self) -> None:
        for connection in list(self._connections):
            await connection.close(1001, "stand-in stopping")

    # --- the websocket ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        try:
            compressor = compressor_for(request.query.get("compress"))
        except ValueError:
            await ws.close(code=4000, message=b"unsupported compression")
            return ws
        connection = GatewayConnection(ws, compressor)
        self._connections.add(connection)
        if request.query.get("encoding", "json") != "json":
            await connection.close(4002, "only json encoding is supported")
            return ws
        connection.send(
            {
                "op": OP_HELLO,
                "d": {
                    "heartbeat_interval": self.heartbeat_interval_ms,
                    "_trace": ["discord-standin"],
                },
            }
        )
        session: GatewaySession | None = None
        client_close_code: int | None = None
        try:
            while True:
                msg = await ws.receive()
                if msg.type == WSMsgType.CLOSE:
                    client_close_code = int(msg.data)
                    break
                if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                if msg.type != WSMsgType.TEXT:
                    await connection.close(4002, "binary frames are not accepted")
                    break
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await connection.close(4002, "decode error")
                    break
                session = await self._on_frame(connection, session, frame)
        finally:
            self._connections.discard(connection)
            await connection.close(1000)
            if session is not None and session.connection is connection:
                session.connection = None
                # A client that closes with 1000/1001 ends its session; other drops can RESUME.
                if client_close_code in SESSION_ENDING_CLOSES:
                    session.resumable = False
                if not session.resumable and self.active is session:
                    self.active = None  # over for good: a new client must IDENTIFY
            self.world.changes.notify()
        return ws

    async def _on_frame(
        self, connection: GatewayConnection, session: GatewaySession | None, frame: JSON
    ) -> GatewaySession | None:
        op, data = frame.get("op"), frame.get("d")
        if op == OP_HEARTBEAT:
            if session is not None and isinstance(data, int):
                session.acked_seq = max(session.acked_seq, data)
                self.world.changes.notify()
            connection.send({"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            if session is not None:
                await connection.close(4005, "Already authenticated.")
                return session
            return await self._identify(connection, data or {})
        elif op == OP_RESUME:
            return await self._resume(connection, data or {})
        elif session is None:
            await connection.close(4003, "Not authenticated.")
        elif op == OP_PRESENCE:
            if isinstance(data, dict):
                session.presence_updates.append(data)
        elif op == OP_REQUEST_MEMBERS:
            self._send_member_chunk(data or {})
        elif op == OP_VOICE:
            pass  # voice is out of scope; Discord would answer with VOICE_STATE_UPDATE
        else:
            await connection.close(4001, "Unknown opcode.")
        return session

    def _token_ok(self, token: Any) -> bool:
        expected = self._expected_token()
        return isinstance(token, str) and bool(token) and (expected is None or token == expected)

    async def _identify(self, connection: GatewayConnection, data: JSON) -> GatewaySession | None:
        if not self._token_ok(data.get("token")):
            await connection.close(4004, "Authentication failed.")
            return None
        if not isinstance(data.get("intents"), int):
            # API v10 requires intents in IDENTIFY.
            await connection.close(4013, "Invalid intent(s).")
            return None
        session = GatewaySession(
            session_id=secrets.token_hex(16), intents=data["intents"], shard=data.get("shard")
        )
        session.connection = connection
        self.sessions[session.session_id] = session
        self.active = session
        self.identify_count += 1
        world = self.world
        ready: JSON = {
            "v": 10,
            "user": dict(
                user_payload(world.bot), verified=True, mfa_enabled=False, flags=0, email=None
            ),
            "guilds": [{"id": str(g), "unavailable": True} for g in world.guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "application": {"id": str(world.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["discord-standin"],
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        self.dispatch("READY", ready)
        last = 0
        for guild_id in list(world.guilds):
            last = self.dispatch("GUILD_CREATE", self.guild_create(guild_id)) or last
        session.ready_seq = last or session.seq
        # The heartbeat the client sends back proves it has processed READY and every GUILD_CREATE.
        self.request_heartbeat()
        world.changes.notify()
        return session

    async def _resume(self, connection: GatewayConnection, data: JSON) -> GatewaySession | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or not session.resumable or not self._token_ok(data.get("token")):
            connection.send({"op": OP_INVALID_SESSION, "d": False})
            return None
        seq = data.get("seq") or 0
        session.connection = connection
        self.active = session
        self.resume_count += 1
        for number, text in session.backlog:
            if number > seq:
                connection.send_text(text)
        self.dispatch("RESUMED", {"_trace": ["discord-standin"]})
        self.world.changes.notify()
        return session

    def guild_create(self, guild_id: int) -> JSON:
        world = self.world
        guild = world.guild(guild_id)
        session = self.active
        everyone = bool(session and session.intents & INTENT_GUILD_MEMBERS)
        # Without the privileged members intent Discord only includes the bot's own member.
        members = list(guild.members.values()) if everyone else [guild.members[world.bot.id]]
        return guild_create_payload(
            guild, world.guild_channels(guild), members, member_count=len(guild.members)
        )

    def _send_member_chunk(self, data: JSON) -> None:
        guild = self.world.guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        wanted = {int(u) for u in data.get("user_ids") or []}
        query = str(data.get("query") or "").lower()
        members = [
            m
            for m in guild.members.values()
            if (not wanted or m.id in wanted) and m.user.name.lower().startswith(query)
        ]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [member_payload(m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [str(u) for u in wanted - {m.id for m in members}],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self.dispatch("GUILD_MEMBERS_CHUNK", chunk)
