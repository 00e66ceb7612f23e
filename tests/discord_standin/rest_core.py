"""Start-up and lookup endpoints: current user, application, gateway URL, guilds, channels."""

from __future__ import annotations

from aiohttp import web

from .errors import UNKNOWN_CHANNEL, UNKNOWN_GUILD, UNKNOWN_MEMBER, UNKNOWN_USER, not_found
from .http_api import ApiContext, json_response, no_content, read_body
from .models import JSON, Channel, Guild
from .payloads import (
    channel_payload,
    guild_create_payload,
    member_payload,
    role_payload,
    user_payload,
)


def application_payload(ctx: ApiContext) -> JSON:
    world = ctx.world
    owner = world.users[next(iter(world.guilds.values())).owner_id] if world.guilds else world.bot
    return {
        "id": str(world.application_id),
        "name": world.bot.name,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "rpc_origins": [],
        "bot_public": True,
        "bot_require_code_grant": False,
        "bot": user_payload(world.bot),
        "owner": user_payload(owner),
        "team": None,
        "verify_key": "0" * 64,
        # GATEWAY_PRESENCE | GATEWAY_GUILD_MEMBERS | GATEWAY_MESSAGE_CONTENT: privileged intents on.
        "flags": (1 << 12) | (1 << 14) | (1 << 18),
        "interactions_endpoint_url": None,
        "redirect_uris": [],
        "tags": [],
        "approximate_guild_count": len(world.guilds),
    }


def routes(ctx: ApiContext) -> list[web.RouteDef]:
    world = ctx.world

    def channel_or_404(raw: str) -> Channel:
        channel = world.channels.get(int(raw)) if raw.isdigit() else None
        if channel is None:
            raise not_found(UNKNOWN_CHANNEL, "Channel")
        return channel

    def guild_or_404(raw: str) -> Guild:
        guild = world.guilds.get(int(raw)) if raw.isdigit() else None
        if guild is None:
            raise not_found(UNKNOWN_GUILD, "Guild")
        return guild

    def render_channel(channel: Channel) -> JSON:
        recipients = [world.users[u] for u in channel.recipient_ids]
        return channel_payload(channel, recipients=recipients)

    async def get_me(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        return json_response(
            dict(
                user_payload(world.bot),
                verified=True,
                mfa_enabled=False,
                flags=0,
                locale="en-US",
                email=None,
            )
        )

    async def get_application(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        return json_response(application_payload(ctx))

    async def get_gateway(request: web.Request) -> web.Response:
        return json_response({"url": ctx.gateway.url})

    async def get_gateway_bot(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        return json_response(
            {
                "url": ctx.gateway.url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def get_user(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        raw = request.match_info["user_id"]
        user = world.users.get(int(raw)) if raw.isdigit() else None
        if user is None:
            raise not_found(UNKNOWN_USER, "User")
        return json_response(user_payload(user))

    async def open_dm(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        body, _ = await read_body(request)
        user = world.users.get(int(body.get("recipient_id") or 0))
        if user is None:
            raise not_found(UNKNOWN_USER, "User")
        return json_response(render_channel(world.dm_channel(user.id)))

    async def get_channel(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        return json_response(render_channel(channel_or_404(request.match_info["channel_id"])))

    async def typing(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        channel_or_404(request.match_info["channel_id"])
        return no_content()

    async def get_guild(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        guild = guild_or_404(request.match_info["guild_id"])
        payload = guild_create_payload(guild, [], [], member_count=len(guild.members))
        for gateway_only in (
            "members",
            "channels",
            "threads",
            "voice_states",
            "presences",
            "joined_at",
            "large",
        ):
            payload.pop(gateway_only, None)
        return json_response(payload)

    async def get_guild_channels(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        guild = guild_or_404(request.match_info["guild_id"])
        return json_response([render_channel(c) for c in world.guild_channels(guild)])

    async def get_guild_roles(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        guild = guild_or_404(request.match_info["guild_id"])
        return json_response([role_payload(r) for r in guild.roles.values()])

    async def get_member(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        guild = guild_or_404(request.match_info["guild_id"])
        raw = request.match_info["user_id"]
        member = guild.members.get(int(raw)) if raw.isdigit() else None
        if member is None:
            raise not_found(UNKNOWN_MEMBER, "Member")
        return json_response(member_payload(member))

    async def list_members(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        guild = guild_or_404(request.match_info["guild_id"])
        limit = max(1, min(1000, int(request.query.get("limit", "1"))))
        after = int(request.query.get("after", "0"))
        members = sorted((m for m in guild.members.values() if m.id > after), key=lambda m: m.id)
        return json_response([member_payload(m) for m in members[:limit]])

    return [
        web.get("/users/@me", get_me),
        web.post("/users/@me/channels", open_dm),
        web.get("/users/{user_id}", get_user),
        web.get("/oauth2/applications/@me", get_application),
        web.get("/applications/@me", get_application),
        web.get("/gateway", get_gateway),
        web.get("/gateway/bot", get_gateway_bot),
        web.get("/channels/{channel_id}", get_channel),
        web.post("/channels/{channel_id}/typing", typing),
        web.get("/guilds/{guild_id}", get_guild),
        web.get("/guilds/{guild_id}/channels", get_guild_channels),
        web.get("/guilds/{guild_id}/roles", get_guild_roles),
        web.get("/guilds/{guild_id}/members", list_members),
        web.get("/guilds/{guild_id}/members/{user_id}", get_member),
    ]
