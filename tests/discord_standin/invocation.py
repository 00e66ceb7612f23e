"""Build INTERACTION_CREATE payloads the way the Discord client would, from test-friendly input.

Input the real Discord client would never let a user submit (a missing required option, a value
outside the declared choices, a click on a disabled button) raises ``InvalidInvocation``: that is a
mistake in the test, not something the bot has to handle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .command_rules import (
    ATTACHMENT,
    BOOLEAN,
    CHANNEL,
    INTEGER,
    MENTIONABLE,
    NUMBER,
    ROLE,
    STRING,
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    USER,
)
from .models import JSON, Member, RegisteredCommand, StoredMessage, User
from .payloads import (
    attachment_payload,
    channel_payload,
    member_payload,
    role_payload,
    user_payload,
)
from .world import World

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
FileSpec = tuple[str, bytes] | tuple[str, bytes, str]


class InvalidInvocation(ValueError):
    """The test asked for an interaction the Discord client could not produce."""


@dataclass(frozen=True)
class CommandTarget:
    command: RegisteredCommand
    path: list[str]  # subcommand group / subcommand names below the command
    leaf_options: list[JSON]  # declared options of the invoked (sub)command


def find_command(world: World, guild_id: int | None, qualified_name: str) -> CommandTarget:
    """Resolve ``"quiz start"`` against guild commands first, then global ones, like Discord."""
    top, *rest = qualified_name.split()
    scopes: list[int | None] = [guild_id, None] if guild_id is not None else [None]
    for scope in scopes:
        for command in world.commands.get(scope, []):
            if command.type == 1 and command.name == top:
                return _descend(command, rest, qualified_name)
    raise InvalidInvocation(
        f"no chat-input command {top!r} is registered for guild {guild_id} or globally"
    )


def _descend(command: RegisteredCommand, rest: list[str], qualified_name: str) -> CommandTarget:
    options = command.options
    path: list[str] = []
    for part in rest:
        match = next(
            (o for o in options if o.get("name") == part and o.get("type") in (1, 2)), None
        )
        if match is None:
            raise InvalidInvocation(f"{qualified_name!r}: no subcommand {part!r}")
        path.append(part)
        options = list(match.get("options") or [])
    if any(o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in options):
        raise InvalidInvocation(f"{qualified_name!r} is a group: name one of its subcommands")
    return CommandTarget(command, path, options)


class _Resolver:
    """Accumulates the ``resolved`` object of an application command interaction."""

    def __init__(self, world: World, guild_id: int | None, channel_id: int) -> None:
        self.world, self.guild_id, self.channel_id = world, guild_id, channel_id
        self.data: dict[str, dict[str, JSON]] = {}

    def add_user(self, user_id: int) -> None:
        user = self.world.users.get(user_id)
        if user is None:
            raise InvalidInvocation(f"unknown user {user_id}")
        self.data.setdefault("users", {})[str(user_id)] = user_payload(user)
        member = self.world.guilds[self.guild_id].members.get(user_id) if self.guild_id else None
        if member is not None:
            perms = self.world.permissions(member.guild_id, user_id, self.channel_id)
            self.data.setdefault("members", {})[str(user_id)] = member_payload(
                member, with_user=False, permissions=perms
            )

    def add_role(self, role_id: int) -> None:
        guild = self.world.guilds.get(self.guild_id or 0)
        role = guild.roles.get(role_id) if guild else None
        if role is None:
            raise InvalidInvocation(f"unknown role {role_id} in guild {self.guild_id}")
        self.data.setdefault("roles", {})[str(role_id)] = role_payload(role)

    def add_channel(self, channel_id: int, allowed_types: list[int] | None) -> None:
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise InvalidInvocation(f"unknown channel {channel_id}")
        if allowed_types and channel.type not in allowed_types:
            raise InvalidInvocation(
                f"channel {channel_id} has type {channel.type}, not one of {allowed_types}"
            )
        payload = channel_payload(channel)
        if self.guild_id is not None:
            payload["permissions"] = str(
                self.world.permissions(self.guild_id, self.world.bot.id, channel_id)
            )
        self.data.setdefault("channels", {})[str(channel_id)] = payload

    def add_attachment(self, name: str, spec: Any) -> int:
        if not (isinstance(spec, tuple) and len(spec) in (2, 3) and isinstance(spec[1], bytes)):
            raise InvalidInvocation(
                f"attachment option {name!r} needs (filename, bytes[, content_type])"
            )
        content_type = spec[2] if len(spec) == 3 else _guess_type(spec[0])
        stored = self.world.store_file(
            self.channel_id, spec[0], spec[1], content_type=content_type, ephemeral=True
        )
        if stored.size > ATTACHMENT_SIZE_LIMIT:
            raise InvalidInvocation(f"{spec[0]!r} is larger than the upload limit")
        self.data.setdefault("attachments", {})[str(stored.id)] = attachment_payload(stored)
        return stored.id


def _guess_type(filename: str) -> str:
    lowered = filename.lower()
    for suffix, mime in (
        (".json", "application/json"),
        (".txt", "text/plain; charset=utf-8"),
        (".csv", "text/csv; charset=utf-8"),
        (".yaml", "application/yaml"),
        (".yml", "application/yaml"),
        (".png", "image/png"),
        (".jpg", "image/jpeg"),
    ):
        if lowered.endswith(suffix):
            return mime
    return "application/octet-stream"


def _as_id(value: Any) -> int:
    if isinstance(value, User | Member):
        return value.id
    if hasattr(value, "id"):
        return int(value.id)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise InvalidInvocation(f"expected an id, got {value!r}")


def _check_choice_and_range(option: JSON, value: Any) -> None:
    name = option["name"]
    choices = option.get("choices")
    if choices and value not in [c.get("value") for c in choices]:
        raise InvalidInvocation(f"option {name!r}: {value!r} is not one of the declared choices")
    if option["type"] == STRING:
        if len(value) < (option.get("min_length") or 0):
            raise InvalidInvocation(f"option {name!r}: shorter than min_length")
        if option.get("max_length") is not None and len(value) > option["max_length"]:
            raise InvalidInvocation(f"option {name!r}: longer than max_length")
    else:
        if option.get("min_value") is not None and value < option["min_value"]:
            raise InvalidInvocation(f"option {name!r}: below min_value")
        if option.get("max_value") is not None and value > option["max_value"]:
            raise InvalidInvocation(f"option {name!r}: above max_value")


def _option_value(option: JSON, value: Any, resolver: _Resolver) -> Any:
    name, opt_type = option["name"], option["type"]
    if opt_type == STRING:
        if not isinstance(value, str):
            raise InvalidInvocation(f"option {name!r} is a string option, got {value!r}")
    elif opt_type == INTEGER:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInvocation(f"option {name!r} is an integer option, got {value!r}")
    elif opt_type == NUMBER:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidInvocation(f"option {name!r} is a number option, got {value!r}")
    elif opt_type == BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidInvocation(f"option {name!r} is a boolean option, got {value!r}")
        return value
    elif opt_type == USER:
        resolver.add_user(_as_id(value))
        return str(_as_id(value))
    elif opt_type == ROLE:
        resolver.add_role(_as_id(value))
        return str(_as_id(value))
    elif opt_type == MENTIONABLE:
        target = _as_id(value)
        if target in resolver.world.users:
            resolver.add_user(target)
        else:
            resolver.add_role(target)
        return str(target)
    elif opt_type == CHANNEL:
        resolver.add_channel(_as_id(value), option.get("channel_types"))
        return str(_as_id(value))
    elif opt_type == ATTACHMENT:
        return str(resolver.add_attachment(name, value))
    _check_choice_and_range(option, value)
    return value


def build_command_data(
    world: World,
    target: CommandTarget,
    *,
    guild_id: int | None,
    channel_id: int,
    options: Mapping[str, Any],
    focused: str | None = None,
) -> JSON:
    """The ``data`` of an APPLICATION_COMMAND (or, with ``focused``, AUTOCOMPLETE) interaction."""
    declared = {o["name"]: o for o in target.leaf_options}
    unknown = set(options) - set(declared)
    if unknown:
        raise InvalidInvocation(f"unknown options {sorted(unknown)}; declared: {sorted(declared)}")
    resolver = _Resolver(world, guild_id, channel_id)
    values: list[JSON] = []
    for option in target.leaf_options:
        name = option["name"]
        if name not in options:
            if option.get("required") and focused is None:
                raise InvalidInvocation(f"required option {name!r} is missing")
            continue
        if name == focused:
            if not option.get("autocomplete"):
                raise InvalidInvocation(f"option {name!r} does not have autocomplete")
            # What the user has typed so far, always sent as a string.
            values.append(
                {"name": name, "type": option["type"], "value": str(options[name]), "focused": True}
            )
        elif focused is not None:
            # Autocomplete carries raw values and no resolved objects.
            raw = options[name]
            values.append(
                {
                    "name": name,
                    "type": option["type"],
                    "value": str(_as_id(raw)) if option["type"] in (6, 7, 8, 9, 11) else raw,
                }
            )
        else:
            values.append(
                {
                    "name": name,
                    "type": option["type"],
                    "value": _option_value(option, options[name], resolver),
                }
            )
    if focused is not None and focused not in declared:
        raise InvalidInvocation(f"focused option {focused!r} is not declared")
    nested: list[JSON] = values
    leaf_depth_names = list(reversed(target.path))
    sub_types = _sub_types(target)
    for sub_name, sub_type in zip(leaf_depth_names, sub_types, strict=True):
        nested = [{"name": sub_name, "type": sub_type, "options": nested}]
    command = target.command
    data: JSON = {"id": str(command.id), "name": command.name, "type": 1}
    if nested:
        data["options"] = nested
    if command.guild_id is not None:
        data["guild_id"] = str(command.guild_id)
    if resolver.data:
        data["resolved"] = resolver.data
    return data


def _sub_types(target: CommandTarget) -> list[int]:
    """Types of the path entries, innermost first (subcommand, then group)."""
    types: list[int] = []
    options = target.command.options
    for part in target.path:
        match = next(o for o in options if o.get("name") == part)
        types.append(int(match["type"]))
        options = list(match.get("options") or [])
    return list(reversed(types))


def check_member_can_use(
    world: World, command: RegisteredCommand, guild_id: int | None, user_id: int, channel_id: int
) -> None:
    """Discord hides commands whose ``default_member_permissions`` the member lacks."""
    required = command.payload.get("default_member_permissions")
    if guild_id is None or required is None:
        return
    perms = world.permissions(guild_id, user_id, channel_id)
    if int(required) & perms != int(required):
        raise InvalidInvocation(
            f"user {user_id} lacks default_member_permissions={required} for /{command.name}; "
            "Discord would not offer the command"
        )


def interaction_payload(
    world: World,
    *,
    interaction_id: int,
    token: str,
    itype: int,
    data: JSON,
    guild_id: int | None,
    channel_id: int,
    user_id: int,
    locale: str,
    message: StoredMessage | None = None,
) -> JSON:
    """The common INTERACTION_CREATE envelope."""
    channel = world.channels[channel_id]
    user = world.users[user_id]
    payload: JSON = {
        "id": str(interaction_id),
        "application_id": str(world.application_id),
        "type": itype,
        "data": data,
        "token": token,
        "version": 1,
        "channel_id": str(channel_id),
        "locale": locale,
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }
    if guild_id is not None:
        guild = world.guild(guild_id)
        member = guild.members.get(user_id)
        if member is None:
            raise InvalidInvocation(f"user {user_id} is not a member of guild {guild_id}")
        perms = world.permissions(guild_id, user_id, channel_id)
        channel_json = channel_payload(channel)
        channel_json["permissions"] = str(perms)
        payload.update(
            guild_id=str(guild_id),
            guild={"id": str(guild_id), "locale": "en-US", "features": []},
            guild_locale="en-US",
            member=member_payload(member, permissions=perms),
            app_permissions=str(world.permissions(guild_id, world.bot.id, channel_id)),
            channel=channel_json,
            authorizing_integration_owners={"0": str(guild_id)},
            context=0,
        )
    else:
        payload.update(
            user=user_payload(user),
            channel=channel_payload(channel, recipients=[user]),
            app_permissions="0",
            authorizing_integration_owners={"0": "0"},
            context=1,
        )
    if message is not None:
        payload["message"] = world.message_json(message)
    return payload
