"""The stand-in's state: who exists, what was said, which commands are registered."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from typing import Any

from .models import (
    CHANNEL_DM,
    FLAG_COMPONENTS_V2,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    JSON,
    Channel,
    Guild,
    Member,
    Pings,
    RecordedRequest,
    RegisteredCommand,
    Role,
    StoredAttachment,
    StoredMessage,
    User,
    Violation,
    utcnow,
)
from .payloads import message_payload
from .permissions import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    Overwrite,
    base_permissions,
    channel_permissions,
)
from .snowflakes import SnowflakeFactory
from .waiting import ChangeNotifier

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
# Flags a bot may set itself on a message; the rest are Discord's to manage.
SETTABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2

# Gateway intents that gate the events the stand-in emits.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

EventSink = Callable[[str, JSON, int], None]


def compute_pings(
    content: str, allowed_mentions: JSON | None, *, replied_user: int | None
) -> Pings:
    """Apply ``allowed_mentions`` to the mentions in ``content``; absent means "parse all"."""
    users = {int(u) for u in USER_MENTION.findall(content)}
    roles = {int(r) for r in ROLE_MENTION.findall(content)}
    everyone = "@everyone" in content or "@here" in content
    if allowed_mentions is None:
        if replied_user is not None:
            users.add(replied_user)
        return Pings(frozenset(users), frozenset(roles), everyone)
    parse = set(allowed_mentions.get("parse") or [])
    allowed_users = {int(u) for u in allowed_mentions.get("users") or []}
    allowed_roles = {int(r) for r in allowed_mentions.get("roles") or []}
    pinged_users = users if "users" in parse else users & allowed_users
    pinged_roles = roles if "roles" in parse else roles & allowed_roles
    if replied_user is not None and allowed_mentions.get("replied_user"):
        pinged_users = pinged_users | {replied_user}
    return Pings(frozenset(pinged_users), frozenset(pinged_roles), everyone and "everyone" in parse)


class World:
    """All stored state, plus the records tests assert on (violations, requests)."""

    def __init__(self, *, application_id: int | None, bot_name: str) -> None:
        self.ids = SnowflakeFactory()
        self.application_id = application_id or self.ids.next()
        self.bot = User(id=self.ids.next(), name=bot_name, bot=True)
        self.users: dict[int, User] = {self.bot.id: self.bot}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, StoredMessage] = {}
        self.channel_messages: dict[int, list[int]] = {}
        self.commands: dict[int | None, list[RegisteredCommand]] = {}
        self.files: dict[int, StoredAttachment] = {}
        self.violations: list[Violation] = []
        self.error_responses: list[Violation] = []
        self.requests: list[RecordedRequest] = []
        self.unhandled_requests: list[RecordedRequest] = []
        self.changes = ChangeNotifier()
        self.cdn_base = "http://127.0.0.1/cdn"
        self.emit: EventSink = lambda event, data, intent: None

    # --- people and places --------------------------------------------------------------------

    def add_user(self, name: str, *, user_id: int | None = None, bot: bool = False) -> User:
        user_id = user_id or self.ids.next()
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = User(id=user_id, name=name, bot=bot)
        return user

    def add_guild(
        self,
        name: str,
        *,
        owner_id: int | None,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
    ) -> Guild:
        guild_id = self.ids.next()
        owner = self.add_user("owner", user_id=owner_id) if owner_id else self.add_user("owner")
        guild = Guild(id=guild_id, name=name, owner_id=owner.id)
        guild.roles[guild_id] = Role(
            id=guild_id, guild_id=guild_id, name="@everyone", permissions=everyone_permissions
        )
        bot_role = Role(
            id=self.ids.next(),
            guild_id=guild_id,
            name=self.bot.name,
            permissions=bot_permissions,
            position=1,
            managed=True,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot.id] = Member(user=self.bot, guild_id=guild_id, roles=[bot_role.id])
        guild.members[owner.id] = Member(user=owner, guild_id=guild_id)
        self.guilds[guild_id] = guild
        return guild

    def add_role(self, guild_id: int, name: str, permissions: int) -> Role:
        guild = self.guild(guild_id)
        role = Role(
            id=self.ids.next(),
            guild_id=guild_id,
            name=name,
            permissions=permissions,
            position=len(guild.roles),
        )
        guild.roles[role.id] = role
        return role

    def add_channel(
        self, guild_id: int, name: str, *, topic: str | None, overwrites: Iterable[Overwrite]
    ) -> Channel:
        guild = self.guild(guild_id)
        channel = Channel(
            id=self.ids.next(),
            guild_id=guild_id,
            name=name,
            topic=topic,
            position=len(guild.channel_ids),
            overwrites=list(overwrites),
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        self.channel_messages[channel.id] = []
        return channel

    def dm_channel(self, user_id: int) -> Channel:
        for channel in self.channels.values():
            if channel.type == CHANNEL_DM and channel.recipient_ids == [user_id]:
                return channel
        channel = Channel(
            id=self.ids.next(), guild_id=None, name="", type=CHANNEL_DM, recipient_ids=[user_id]
        )
        self.channels[channel.id] = channel
        self.channel_messages[channel.id] = []
        return channel

    def add_member(
        self, guild_id: int, user: User, *, roles: Iterable[int], nick: str | None
    ) -> Member:
        guild = self.guild(guild_id)
        for role_id in roles:
            if role_id not in guild.roles:
                raise KeyError(f"role {role_id} is not in guild {guild_id}")
        member = Member(user=user, guild_id=guild_id, roles=list(roles), nick=nick)
        guild.members[user.id] = member
        return member

    def guild(self, guild_id: int) -> Guild:
        try:
            return self.guilds[guild_id]
        except KeyError:
            raise KeyError(f"unknown guild {guild_id}") from None

    def guild_channels(self, guild: Guild) -> list[Channel]:
        return [self.channels[c] for c in guild.channel_ids]

    def permissions(self, guild_id: int, user_id: int, channel_id: int | None = None) -> int:
        """The member's permissions, in the channel when one is given."""
        guild = self.guild(guild_id)
        member = guild.members.get(user_id)
        roles = member.roles if member else []
        role_perms = {r.id: r.permissions for r in guild.roles.values()}
        perms = base_permissions(
            guild_id=guild_id,
            owner_id=guild.owner_id,
            user_id=user_id,
            role_perms=role_perms,
            member_roles=roles,
        )
        channel = self.channels.get(channel_id) if channel_id else None
        if channel is None:
            return perms
        return channel_permissions(
            perms,
            guild_id=guild_id,
            user_id=user_id,
            member_roles=roles,
            overwrites=channel.overwrites,
        )

    def bot_can(self, channel: Channel, needed: int) -> bool:
        if channel.guild_id is None:
            return True
        return self.permissions(channel.guild_id, self.bot.id, channel.id) & needed == needed

    # --- files --------------------------------------------------------------------------------

    def store_file(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> StoredAttachment:
        attachment_id = self.ids.next()
        url = f"{self.cdn_base}/attachments/{channel_id}/{attachment_id}/{filename}"
        attachment = StoredAttachment(
            id=attachment_id,
            filename=filename,
            data=data,
            url=url,
            content_type=content_type,
            description=description,
            ephemeral=ephemeral,
        )
        self.files[attachment_id] = attachment
        return attachment

    # --- messages -----------------------------------------------------------------------------

    def message_json(self, message: StoredMessage) -> JSON:
        mentioned = [
            self.users[u]
            for u in map(int, USER_MENTION.findall(message.content))
            if u in self.users
        ]
        member = None
        if message.guild_id is not None:
            member = self.guilds[message.guild_id].members.get(message.author.id)
        return message_payload(message, bot_id=self.bot.id, mentions=mentioned, member=member)

    def channel_message_list(self, channel_id: int) -> list[StoredMessage]:
        return [self.messages[m] for m in self.channel_messages.get(channel_id, [])]

    def create_message(
        self,
        channel: Channel,
        author: User,
        payload: JSON,
        files: list[StoredAttachment],
        *,
        message_type: int = 0,
        extra_flags: int = 0,
        **fields: Any,
    ) -> StoredMessage:
        """Store a new message built from a create body (already validated)."""
        message = StoredMessage(
            id=self.ids.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            type=message_type,
            **fields,
        )
        message.flags = (int(payload.get("flags") or 0) & SETTABLE_FLAGS) | extra_flags
        message.tts = bool(payload.get("tts"))
        message.message_reference = payload.get("message_reference")
        if message.message_reference:
            message.type = 19  # REPLY
        self._apply_body(message, payload, files, creating=True)
        self.messages[message.id] = message
        self.channel_messages.setdefault(channel.id, []).append(message.id)
        if not message.ephemeral:
            # Like Discord, a deferred "thinking..." placeholder is created (flag LOADING) and
            # later updated, so the bot sees MESSAGE_CREATE then MESSAGE_UPDATE.
            self.emit("MESSAGE_CREATE", self.message_json(message), self._message_intent(channel))
        self.changes.notify()
        return message

    def edit_message(
        self,
        message: StoredMessage,
        payload: JSON,
        files: list[StoredAttachment],
        *,
        finish_loading: bool = False,
    ) -> StoredMessage:
        """Apply an edit body; the previous state goes to ``message.revisions``.

        ``finish_loading`` turns a deferred placeholder into the real response: that is not
        an edit a user would see, so it leaves no revision and no "(edited)" mark.
        """
        now = utcnow()
        if finish_loading:
            message.flags &= ~FLAG_LOADING
        else:
            message.revisions.append(message.snapshot(now))
            message.edited_at = now
        if "flags" in payload and payload["flags"] is not None:
            keep = message.flags & ~SETTABLE_FLAGS
            message.flags = keep | (int(payload["flags"]) & SETTABLE_FLAGS)
        self._apply_body(message, payload, files, creating=False)
        channel = self.channels[message.channel_id]
        if not message.ephemeral:
            self.emit("MESSAGE_UPDATE", self.message_json(message), self._message_intent(channel))
        self.changes.notify()
        return message

    def delete_message(self, message: StoredMessage) -> None:
        message.deleted = True
        channel = self.channels[message.channel_id]
        if not message.ephemeral:
            data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
            self.emit("MESSAGE_DELETE", data, self._message_intent(channel))
        self.changes.notify()

    def _message_intent(self, channel: Channel) -> int:
        return INTENT_DIRECT_MESSAGES if channel.guild_id is None else INTENT_GUILD_MESSAGES

    def _apply_body(
        self,
        message: StoredMessage,
        payload: JSON,
        files: list[StoredAttachment],
        *,
        creating: bool,
    ) -> None:
        message.sent_payloads.append(copy.deepcopy(payload))
        if "content" in payload or creating:
            message.content = payload.get("content") or ""
        if "embeds" in payload or creating:
            message.embeds = [
                dict(e, type=e.get("type", "rich")) for e in payload.get("embeds") or []
            ]
        if "components" in payload or creating:
            message.components = copy.deepcopy(payload.get("components") or [])
        if "allowed_mentions" in payload or creating:
            message.allowed_mentions = copy.deepcopy(payload.get("allowed_mentions"))
        message.attachments = self._resolve_attachments(message, payload, files, creating=creating)
        replied_user = None
        reference = message.message_reference
        if reference and reference.get("message_id"):
            target = self.messages.get(int(reference["message_id"]))
            replied_user = target.author.id if target else None
        message.pings = compute_pings(
            message.content, message.allowed_mentions, replied_user=replied_user
        )

    def _resolve_attachments(
        self,
        message: StoredMessage,
        payload: JSON,
        files: list[StoredAttachment],
        *,
        creating: bool,
    ) -> list[StoredAttachment]:
        listed = payload.get("attachments")
        if listed is None:
            # Without an attachments list, uploads add to what the message already has.
            return (message.attachments if not creating else []) + files
        kept_ids = {int(a["id"]) for a in listed if isinstance(a, dict) and "id" in a}
        kept = [a for a in message.attachments if a.id in kept_ids]
        # New uploads are referenced by their multipart index (``files[n]`` has ``id: n``).
        by_index = {int(a["id"]): a for a in listed if isinstance(a, dict) and "id" in a}
        for index, upload in enumerate(files):
            described = by_index.get(index)
            if described and described.get("description"):
                upload.description = described["description"]
        return kept + files

    def message_for_bot(
        self, message_id: int, channel_id: int | None = None
    ) -> StoredMessage | None:
        """A message the client may see via channel endpoints (ephemeral ones are hidden)."""
        message = self.messages.get(message_id)
        if message is None or message.deleted or message.ephemeral:
            return None
        if channel_id is not None and message.channel_id != channel_id:
            return None
        return message
