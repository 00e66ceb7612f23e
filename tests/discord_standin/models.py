"""What the stand-in stores: users, guilds, channels, messages, commands, and what went wrong."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .permissions import Overwrite

JSON = dict[str, Any]

# Message flags, https://discord.com/developers/docs/resources/message#message-object-message-flags
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15

CHANNEL_GUILD_TEXT = 0
CHANNEL_DM = 1


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class User:
    id: int
    name: str
    bot: bool = False
    global_name: str | None = None


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False


@dataclass
class Member:
    user: User
    guild_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: dt.datetime = field(default_factory=utcnow)

    @property
    def id(self) -> int:
        return self.user.id


@dataclass
class Channel:
    id: int
    guild_id: int | None
    name: str
    type: int = CHANNEL_GUILD_TEXT
    position: int = 0
    topic: str | None = None
    overwrites: list[Overwrite] = field(default_factory=list)
    recipient_ids: list[int] = field(default_factory=list)


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    members: dict[int, Member] = field(default_factory=dict)
    joined_at: dt.datetime = field(default_factory=utcnow)

    @property
    def everyone_role(self) -> Role:
        return self.roles[self.id]


@dataclass
class StoredAttachment:
    """A file Discord holds: sent by the bot, or given by a test as a command option."""

    id: int
    filename: str
    data: bytes = field(repr=False)
    url: str
    content_type: str | None = None
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Pings:
    """Who a message actually notifies once ``allowed_mentions`` is applied to its content."""

    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    everyone: bool = False


@dataclass(frozen=True)
class MessageRevision:
    """A message's state before one of its edits."""

    content: str
    embeds: list[JSON]
    components: list[JSON]
    attachment_names: list[str]
    flags: int
    replaced_at: dt.datetime


@dataclass
class StoredMessage:
    """A message as Discord holds it. Updated in place by edits; older states are in ``revisions``.

    ``sent_payloads`` keeps every create/edit body exactly as the bot sent it, for assertions
    on fields Discord does not echo back (``allowed_mentions`` for instance).
    """

    id: int
    channel_id: int
    guild_id: int | None
    author: User
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    flags: int = 0
    tts: bool = False
    type: int = 0
    allowed_mentions: JSON | None = None
    pings: Pings = Pings()
    interaction_id: int | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_metadata: JSON | None = None
    message_reference: JSON | None = None
    reactions: dict[str, set[int]] = field(default_factory=dict)
    created_at: dt.datetime = field(default_factory=utcnow)
    edited_at: dt.datetime | None = None
    deleted: bool = False
    revisions: list[MessageRevision] = field(default_factory=list, repr=False)
    sent_payloads: list[JSON] = field(default_factory=list, repr=False)
    # For ephemeral messages: the only user who sees (and can click) them.
    visible_to: int | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is a deferred "Bot is thinking..." placeholder."""
        return bool(self.flags & FLAG_LOADING)

    @property
    def edited(self) -> bool:
        return self.edited_at is not None

    def iter_components(self) -> Iterator[JSON]:
        """Every component at any depth (rows, containers, sections, accessories)."""
        yield from iter_components(self.components)

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.iter_components() if "custom_id" in c]

    def component(self, custom_id: str) -> JSON | None:
        return next((c for c in self.iter_components() if c.get("custom_id") == custom_id), None)

    @property
    def buttons(self) -> list[JSON]:
        return [c for c in self.iter_components() if c.get("type") == 2]

    @property
    def embed_texts(self) -> list[str]:
        """Titles, descriptions and field texts of all embeds: handy for substring asserts."""
        texts: list[str] = []
        for embed in self.embeds:
            texts.extend(str(embed[k]) for k in ("title", "description") if embed.get(k))
            for fld in embed.get("fields", []):
                texts.extend((str(fld.get("name", "")), str(fld.get("value", ""))))
        return texts

    def snapshot(self, at: dt.datetime) -> MessageRevision:
        return MessageRevision(
            content=self.content,
            embeds=copy.deepcopy(self.embeds),
            components=copy.deepcopy(self.components),
            attachment_names=[a.filename for a in self.attachments],
            flags=self.flags,
            replaced_at=at,
        )


def iter_components(components: list[JSON]) -> Iterator[JSON]:
    for component in components:
        if not isinstance(component, dict):
            continue
        yield component
        children = component.get("components")
        if isinstance(children, list):
            yield from iter_components(children)
        for key in ("accessory", "component"):
            child = component.get(key)
            if isinstance(child, dict):
                yield from iter_components([child])


@dataclass
class RegisteredCommand:
    """An application command as Discord stored it after a sync (``payload`` is what it returns)."""

    id: int
    guild_id: int | None
    payload: JSON

    @property
    def name(self) -> str:
        return str(self.payload["name"])

    @property
    def type(self) -> int:
        return int(self.payload.get("type", 1))

    @property
    def description(self) -> str:
        return str(self.payload.get("description", ""))

    @property
    def options(self) -> list[JSON]:
        return list(self.payload.get("options") or [])

    def qualified_names(self) -> list[str]:
        """``["quiz start", "quiz stop"]`` for a group; ``["ping"]`` for a plain command."""
        names: list[str] = []
        subs = [o for o in self.options if o.get("type") in (1, 2)]
        if not subs:
            return [self.name]
        for sub in subs:
            if sub["type"] == 1:
                names.append(f"{self.name} {sub['name']}")
            else:
                names.extend(
                    f"{self.name} {sub['name']} {leaf['name']}" for leaf in sub.get("options") or []
                )
        return names


@dataclass(frozen=True)
class Violation:
    """A request Discord would have rejected (or an interaction left unanswered)."""

    rule: str
    detail: str
    method: str
    path: str
    status: int
    code: int
    body: JSON

    def __str__(self) -> str:
        return (
            f"[{self.rule}] {self.method} {self.path} -> {self.status}/{self.code}: {self.detail}"
        )


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the client made, with the status the stand-in answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
