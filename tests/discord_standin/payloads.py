"""Render stored objects as the JSON shapes Discord sends (only what discord.py reads, plus ids)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .models import (
    JSON,
    Channel,
    Guild,
    Member,
    Role,
    StoredAttachment,
    StoredMessage,
    User,
)


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def user_payload(user: User) -> JSON:
    return {
        "id": str(user.id),
        "username": user.name,
        "discriminator": "0",
        "global_name": user.global_name,
        "avatar": None,
        "bot": user.bot,
        "public_flags": 0,
    }


def role_payload(role: Role) -> JSON:
    return {
        "id": str(role.id),
        "name": role.name,
        "permissions": str(role.permissions),
        "position": role.position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "managed": role.managed,
        "mentionable": False,
        "flags": 0,
    }


def member_payload(
    member: Member, *, with_user: bool = True, permissions: int | None = None
) -> JSON:
    data: JSON = {
        "nick": member.nick,
        "avatar": None,
        "banner": None,
        "roles": [str(r) for r in member.roles],
        "joined_at": iso(member.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user_payload(member.user)
    if permissions is not None:
        # Interaction payloads carry the member's resolved permissions in the channel.
        data["permissions"] = str(permissions)
    return data


def channel_payload(channel: Channel, *, recipients: list[User] | None = None) -> JSON:
    data: JSON = {"id": str(channel.id), "type": channel.type, "last_message_id": None, "flags": 0}
    if channel.guild_id is not None:
        data.update(
            guild_id=str(channel.guild_id),
            name=channel.name,
            position=channel.position,
            permission_overwrites=[o.to_payload() for o in channel.overwrites],
            topic=channel.topic,
            nsfw=False,
            parent_id=None,
            rate_limit_per_user=0,
        )
    else:
        data["recipients"] = [user_payload(u) for u in recipients or []]
    return data


def guild_create_payload(
    guild: Guild, channels: list[Channel], members: list[Member], *, member_count: int
) -> JSON:
    system_channel = channels[0].id if channels else None
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(guild.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "features": [],
        "system_channel_id": str(system_channel) if system_channel else None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "application_id": None,
        "vanity_url_code": None,
        "max_members": 500000,
        "roles": [role_payload(r) for r in guild.roles.values()],
        "emojis": [],
        "stickers": [],
        "joined_at": iso(guild.joined_at),
        "large": False,
        "unavailable": False,
        "member_count": member_count,
        "voice_states": [],
        "members": [member_payload(m) for m in members],
        "channels": [channel_payload(c) for c in channels],
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def attachment_payload(attachment: StoredAttachment) -> JSON:
    data: JSON = {
        "id": str(attachment.id),
        "filename": attachment.filename,
        "size": attachment.size,
        "url": attachment.url,
        "proxy_url": attachment.url,
        "content_type": attachment.content_type,
        "flags": 0,
    }
    if attachment.description is not None:
        data["description"] = attachment.description
    if attachment.ephemeral:
        data["ephemeral"] = True
    return data


def message_payload(
    message: StoredMessage, *, bot_id: int, mentions: list[User], member: Member | None = None
) -> JSON:
    data: JSON = {
        "id": str(message.id),
        "channel_id": str(message.channel_id),
        "type": message.type,
        "author": user_payload(message.author),
        "content": message.content,
        "timestamp": iso(message.created_at),
        "edited_timestamp": iso(message.edited_at),
        "tts": message.tts,
        "mention_everyone": message.pings.everyone,
        "mentions": [user_payload(u) for u in mentions],
        "mention_roles": [str(r) for r in sorted(message.pings.roles)],
        "attachments": [attachment_payload(a) for a in message.attachments],
        "embeds": message.embeds,
        "components": message.components,
        "pinned": False,
        "flags": message.flags,
    }
    if message.guild_id is not None:
        data["guild_id"] = str(message.guild_id)
        if member is not None and message.webhook_id is None:
            data["member"] = member_payload(member, with_user=False)
    if message.webhook_id is not None:
        data["webhook_id"] = str(message.webhook_id)
    if message.application_id is not None:
        data["application_id"] = str(message.application_id)
    if message.interaction_metadata is not None:
        data["interaction_metadata"] = message.interaction_metadata
        # The deprecated ``interaction`` field: older discord.py versions map views through it.
        meta = message.interaction_metadata
        legacy: dict[str, Any] = {"id": meta["id"], "type": meta["type"], "user": meta["user"]}
        legacy["name"] = meta.get("name", "")
        data["interaction"] = legacy
    if message.message_reference is not None:
        data["message_reference"] = message.message_reference
    if message.reactions:
        data["reactions"] = [
            {
                "emoji": {"id": None, "name": emoji},
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "me": bot_id in users,
                "me_burst": False,
                "burst_colors": [],
            }
            for emoji, users in message.reactions.items()
            if users
        ]
    return data
