"""Application command endpoints: bulk overwrite, create, fetch, edit, delete (global and guild)."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from .command_rules import validate_command, validate_command_list
from .errors import (
    UNKNOWN_APPLICATION_COMMAND,
    UNKNOWN_GUILD,
    DiscordHTTPError,
    FormErrors,
    invalid_form_body,
    not_found,
)
from .http_api import ApiContext, json_response, no_content, read_json_any
from .models import JSON, RegisteredCommand

# Fields Discord fills in when a command is created without them.
COMMAND_DEFAULTS: JSON = {
    "type": 1,
    "name_localizations": None,
    "description_localizations": None,
    "default_member_permissions": None,
    "nsfw": False,
    "contexts": None,
    "integration_types": [0],
}


def routes(ctx: ApiContext) -> list[web.RouteDef]:
    world = ctx.world

    def scope_of(request: web.Request) -> int | None:
        ctx.require_bot_auth(request)
        if request.match_info["app_id"] != str(world.application_id):
            raise DiscordHTTPError(
                403,
                20012,
                "You are not authorized to perform this action on this application",
                rule="commands.wrong_application",
            )
        raw = request.match_info.get("guild_id")
        if raw is None:
            return None
        if not raw.isdigit() or int(raw) not in world.guilds:
            raise not_found(UNKNOWN_GUILD, "Guild")
        return int(raw)

    def stored(
        scope: int | None, data: JSON, existing: RegisteredCommand | None
    ) -> RegisteredCommand:
        payload = dict(COMMAND_DEFAULTS)
        payload.update({k: copy.deepcopy(v) for k, v in data.items() if k != "id"})
        if payload.get("type") == 1 and "options" not in payload:
            payload["options"] = []
        if payload.get("type") != 1:
            payload["description"] = ""
        command_id = existing.id if existing else world.ids.next()
        payload.update(
            id=str(command_id),
            application_id=str(world.application_id),
            version=str(world.ids.next()),
        )
        if scope is None:
            payload.setdefault("dm_permission", True)
        else:
            payload["guild_id"] = str(scope)
        return RegisteredCommand(id=command_id, guild_id=scope, payload=payload)

    def find_same(scope: int | None, data: JSON) -> RegisteredCommand | None:
        key = (int(data.get("type", 1)), data.get("name"))
        return next((c for c in world.commands.get(scope, []) if (c.type, c.name) == key), None)

    def by_id(scope: int | None, raw: str) -> RegisteredCommand:
        command = next((c for c in world.commands.get(scope, []) if str(c.id) == raw), None)
        if command is None:
            raise not_found(UNKNOWN_APPLICATION_COMMAND, "application command")
        return command

    async def list_commands(request: web.Request) -> web.Response:
        scope = scope_of(request)
        return json_response([c.payload for c in world.commands.get(scope, [])])

    async def overwrite(request: web.Request) -> web.Response:
        scope = scope_of(request)
        body: Any = await read_json_any(request)
        errors = validate_command_list(body)
        if errors:
            raise invalid_form_body(errors, "commands.invalid")
        # Discord keeps the id of a command whose (type, name) survives the overwrite.
        world.commands[scope] = [stored(scope, data, find_same(scope, data)) for data in body]
        world.changes.notify()
        return json_response([c.payload for c in world.commands[scope]])

    async def create(request: web.Request) -> web.Response:
        scope = scope_of(request)
        body: Any = await read_json_any(request)
        errors = FormErrors()
        validate_command(body, (), errors)
        if errors:
            raise invalid_form_body(errors, "commands.invalid")
        existing = find_same(scope, body)
        commands = world.commands.setdefault(scope, [])
        if existing is None:
            chat_inputs = sum(1 for c in commands if c.type == 1)
            if body.get("type", 1) == 1 and chat_inputs >= 100:
                raise DiscordHTTPError(
                    400,
                    30032,
                    "Maximum number of application commands reached (100)",
                    rule="commands.too_many",
                )
        command = stored(scope, body, existing)
        if existing is not None:
            commands[commands.index(existing)] = command
        else:
            commands.append(command)
        world.changes.notify()
        return json_response(command.payload, status=200 if existing else 201)

    async def get_one(request: web.Request) -> web.Response:
        scope = scope_of(request)
        return json_response(by_id(scope, request.match_info["command_id"]).payload)

    async def edit_one(request: web.Request) -> web.Response:
        scope = scope_of(request)
        command = by_id(scope, request.match_info["command_id"])
        body: Any = await read_json_any(request)
        merged = {
            k: v for k, v in command.payload.items() if k not in ("id", "application_id", "version")
        }
        merged.update(body if isinstance(body, dict) else {})
        errors = FormErrors()
        validate_command(merged, (), errors)
        if errors:
            raise invalid_form_body(errors, "commands.invalid")
        updated = stored(scope, merged, command)
        commands = world.commands[scope]
        commands[commands.index(command)] = updated
        world.changes.notify()
        return json_response(updated.payload)

    async def delete_one(request: web.Request) -> web.Response:
        scope = scope_of(request)
        command = by_id(scope, request.match_info["command_id"])
        world.commands[scope].remove(command)
        world.changes.notify()
        return no_content()

    result: list[web.RouteDef] = []
    for base in (
        "/applications/{app_id}/commands",
        "/applications/{app_id}/guilds/{guild_id}/commands",
    ):
        result += [
            web.get(base, list_commands),
            web.put(base, overwrite),
            web.post(base, create),
            web.get(base + "/{command_id}", get_one),
            web.patch(base + "/{command_id}", edit_one),
            web.delete(base + "/{command_id}", delete_one),
        ]
    return result
