"""What a user does to the bot's messages: click buttons, pick in selects, fill in modals.

Builds the ``data`` of MESSAGE_COMPONENT and MODAL_SUBMIT interactions, refusing (with
``InvalidInvocation``) whatever the Discord client would not let a user do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .invocation import InvalidInvocation
from .message_rules import SELECTS, STRING_SELECT
from .models import JSON, StoredMessage
from .payloads import channel_payload, member_payload, role_payload, user_payload
from .world import World

BUTTON = 2
LINK_OR_PREMIUM_STYLES = (5, 6)


def find_clickable(
    world: World, message_id: int, custom_id: str, user_id: int
) -> tuple[StoredMessage, JSON]:
    """The message and its enabled component ``custom_id``, if ``user_id`` can see it."""
    stored = world.messages.get(message_id)
    if stored is None or stored.deleted:
        raise InvalidInvocation("the message does not exist (any more)")
    if stored.loading:
        raise InvalidInvocation("the message is still a 'thinking...' placeholder")
    if stored.ephemeral and stored.visible_to != user_id:
        raise InvalidInvocation(f"user {user_id} cannot see this ephemeral message")
    component = stored.component(custom_id)
    if component is None:
        raise InvalidInvocation(
            f"no component {custom_id!r} on the message; it has {stored.custom_ids}"
        )
    if component.get("disabled"):
        raise InvalidInvocation(f"{custom_id!r} is disabled")
    return stored, component


def button_data(component: JSON) -> JSON:
    custom_id = component.get("custom_id")
    if component.get("type") != BUTTON:
        raise InvalidInvocation(f"{custom_id!r} is not a button (type {component.get('type')})")
    if component.get("style") in LINK_OR_PREMIUM_STYLES:
        raise InvalidInvocation(f"{custom_id!r} is a link/premium button: clicks never reach bots")
    data: JSON = {"custom_id": custom_id, "component_type": BUTTON}
    if "id" in component:
        data["id"] = component["id"]
    return data


def select_data(
    world: World, message: StoredMessage, component: JSON, values: Sequence[str | int]
) -> JSON:
    """Data of a select interaction; entity selects carry ``resolved`` objects for the ids."""
    custom_id, ctype = component.get("custom_id"), component.get("type")
    if ctype not in SELECTS:
        raise InvalidInvocation(f"{custom_id!r} is not a select menu")
    picked = [str(v) for v in values]
    low, high = component.get("min_values", 1), component.get("max_values", 1)
    if not low <= len(picked) <= high:
        raise InvalidInvocation(f"{custom_id!r} takes {low}..{high} values, got {len(picked)}")
    data: JSON = {"custom_id": custom_id, "component_type": ctype, "values": picked}
    if ctype == STRING_SELECT:
        offered = {o["value"] for o in component.get("options", [])}
        if not set(picked) <= offered:
            raise InvalidInvocation(
                f"{sorted(set(picked) - offered)} are not options of {custom_id!r}"
            )
    else:
        data["resolved"] = _resolve_ids(world, message.guild_id, picked)
    if "id" in component:
        data["id"] = component["id"]
    return data


def _resolve_ids(world: World, guild_id: int | None, ids: Sequence[str]) -> JSON:
    resolved: dict[str, dict[str, JSON]] = {}
    guild = world.guilds.get(guild_id or 0)
    for raw in ids:
        target = int(raw)
        if target in world.users:
            resolved.setdefault("users", {})[raw] = user_payload(world.users[target])
            if guild is not None and target in guild.members:
                member = member_payload(guild.members[target], with_user=False)
                resolved.setdefault("members", {})[raw] = member
        elif guild is not None and target in guild.roles:
            resolved.setdefault("roles", {})[raw] = role_payload(guild.roles[target])
        elif target in world.channels:
            resolved.setdefault("channels", {})[raw] = channel_payload(world.channels[target])
        else:
            raise InvalidInvocation(f"{raw} is not a known user, role or channel")
    return resolved


def modal_submit_data(modal: JSON, values: Mapping[str, str | Sequence[str]]) -> JSON:
    """MODAL_SUBMIT data: the modal's layout (action rows or labels) filled with ``values``."""
    unused = set(values)

    def submitted(component: JSON) -> JSON:
        custom_id = component["custom_id"]
        unused.discard(custom_id)
        entry: JSON = {"type": component["type"], "custom_id": custom_id}
        if "id" in component:
            entry["id"] = component["id"]
        if component["type"] == 4:
            entry["value"] = _text_value(component, values.get(custom_id))
        else:
            picked = values.get(custom_id, [])
            entry["values"] = [picked] if isinstance(picked, str) else list(picked)
        return entry

    components: list[JSON] = []
    for row in modal.get("components") or []:
        if row.get("type") == 1:
            children = [submitted(c) for c in row.get("components", [])]
            components.append({"type": 1, "components": children})
        elif row.get("type") == 18:
            label: JSON = {"type": 18, "component": submitted(row["component"])}
            if "id" in row:
                label["id"] = row["id"]
            components.append(label)
        elif row.get("type") == 10 and "id" in row:
            components.append({"type": 10, "id": row["id"]})
    if unused:
        raise InvalidInvocation(f"the modal has no inputs {sorted(unused)}")
    return {"custom_id": modal["custom_id"], "components": components}


def _text_value(component: JSON, given: str | Sequence[str] | None) -> str:
    """What the user typed, checked against the input's own limits (the client enforces them)."""
    custom_id = component["custom_id"]
    value = given if given is not None else (component.get("value") or "")
    if not isinstance(value, str):
        raise InvalidInvocation(f"text input {custom_id!r} takes a string")
    if component.get("required", True) and not value:
        raise InvalidInvocation(f"text input {custom_id!r} is required")
    if value and len(value) < (component.get("min_length") or 0):
        raise InvalidInvocation(f"text input {custom_id!r} is shorter than min_length")
    if len(value) > (component.get("max_length") or 4000):
        raise InvalidInvocation(f"text input {custom_id!r} is longer than max_length")
    return value
