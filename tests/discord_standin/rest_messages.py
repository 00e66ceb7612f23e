"""Channel messages: create (JSON or multipart), fetch, history, edit, delete, reactions."""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from .errors import (
    CANNOT_EDIT_OTHERS_MESSAGE,
    MISSING_PERMISSIONS,
    UNKNOWN_CHANNEL,
    UNKNOWN_MESSAGE,
    DiscordHTTPError,
    FormErrors,
    invalid_form_body,
    not_found,
)
from .http_api import ApiContext, json_response, no_content, read_body
from .message_bodies import check_message_body
from .models import FLAG_EPHEMERAL, Channel, StoredMessage
from .permissions import Perm


def routes(ctx: ApiContext) -> list[web.RouteDef]:
    world = ctx.world

    def channel_or_404(request: web.Request) -> Channel:
        raw = request.match_info["channel_id"]
        channel = world.channels.get(int(raw)) if raw.isdigit() else None
        if channel is None:
            raise not_found(UNKNOWN_CHANNEL, "Channel")
        return channel

    def message_or_404(request: web.Request, channel: Channel) -> StoredMessage:
        raw = request.match_info["message_id"]
        message = world.message_for_bot(int(raw), channel.id) if raw.isdigit() else None
        if message is None:
            raise not_found(UNKNOWN_MESSAGE, "Message")
        return message

    def require(channel: Channel, needed: Perm) -> None:
        if not world.bot_can(channel, int(needed)):
            raise DiscordHTTPError(
                403, MISSING_PERMISSIONS, "Missing Permissions", rule="permissions.missing"
            )

    async def create(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        channel = channel_or_404(request)
        body, uploads = await read_body(request)
        require(channel, Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES)
        if uploads:
            require(channel, Perm.ATTACH_FILES)
        if int(body.get("flags") or 0) & FLAG_EPHEMERAL:
            errors = FormErrors()
            errors.add(
                ("flags",),
                "MESSAGE_FLAGS_INVALID",
                "Ephemeral messages exist only as interaction responses",
            )
            raise invalid_form_body(errors, "message.flags")
        check_message_body(body, file_count=len(uploads))
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id"):
            target = world.message_for_bot(int(reference["message_id"]))
            if target is None and reference.get("fail_if_not_exists", True):
                errors = FormErrors()
                errors.add(
                    ("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
                raise invalid_form_body(errors, "message.message_reference")
        files = ctx.store_uploads(channel.id, uploads)
        message = world.create_message(channel, world.bot, body, files)
        return json_response(world.message_json(message))

    async def history(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        channel = channel_or_404(request)
        require(channel, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        visible = [
            m
            for m in world.channel_message_list(channel.id)
            if not (m.deleted or m.ephemeral or m.loading)
        ]
        if "before" in request.query:
            visible = [m for m in visible if m.id < int(request.query["before"])]
        if "after" in request.query:
            # Discord returns the oldest messages after the id, still newest first.
            visible = [m for m in visible if m.id > int(request.query["after"])][:limit]
        newest_first = list(reversed(visible))[:limit]
        return json_response([world.message_json(m) for m in newest_first])

    async def get_one(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        channel = channel_or_404(request)
        return json_response(world.message_json(message_or_404(request, channel)))

    async def edit(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        channel = channel_or_404(request)
        message = message_or_404(request, channel)
        body, uploads = await read_body(request)
        if message.author.id != world.bot.id:
            raise DiscordHTTPError(
                403,
                CANNOT_EDIT_OTHERS_MESSAGE,
                "Cannot edit a message authored by another user",
                rule="message.edit_not_own",
            )
        check_message_body(body, file_count=len(uploads), existing=message)
        files = ctx.store_uploads(channel.id, uploads)
        world.edit_message(message, body, files)
        return json_response(world.message_json(message))

    async def delete(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        channel = channel_or_404(request)
        message = message_or_404(request, channel)
        if message.author.id != world.bot.id:
            require(channel, Perm.MANAGE_MESSAGES)
        world.delete_message(message)
        return no_content()

    async def react(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        channel = channel_or_404(request)
        message = message_or_404(request, channel)
        require(channel, Perm.ADD_REACTIONS | Perm.READ_MESSAGE_HISTORY)
        emoji = unquote(request.match_info["emoji"])
        message.reactions.setdefault(emoji, set()).add(world.bot.id)
        world.changes.notify()
        return no_content()

    async def unreact(request: web.Request) -> web.Response:
        ctx.require_bot_auth(request)
        channel = channel_or_404(request)
        message = message_or_404(request, channel)
        emoji = unquote(request.match_info["emoji"])
        message.reactions.get(emoji, set()).discard(world.bot.id)
        world.changes.notify()
        return no_content()

    base = "/channels/{channel_id}/messages"
    return [
        web.post(base, create),
        web.get(base, history),
        web.get(base + "/{message_id}", get_one),
        web.patch(base + "/{message_id}", edit),
        web.delete(base + "/{message_id}", delete),
        web.put(base + "/{message_id}/reactions/{emoji}/@me", react),
        web.delete(base + "/{message_id}/reactions/{emoji}/@me", unreact),
    ]
