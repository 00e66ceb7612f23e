"""A local stand-in for Discord that the real discord.py client connects to, for end-to-end tests.

It speaks the gateway (zlib-stream/zstd-stream, heartbeats, READY/GUILD_CREATE, RESUME,
INTERACTION_CREATE) and the REST endpoints a bot uses, enforces Discord's documented limits, and
answers violations as Discord does while recording them in ``DiscordStandIn.violations``.
"""

from .errors import DiscordHTTPError, FormErrors
from .interactions import InitialResponse, InteractionRecord
from .invocation import InvalidInvocation
from .models import (
    Channel,
    Guild,
    Member,
    MessageRevision,
    Pings,
    RecordedRequest,
    RegisteredCommand,
    Role,
    StoredAttachment,
    StoredMessage,
    User,
    Violation,
)
from .permissions import Overwrite, Perm
from .standin import DiscordStandIn

__all__ = [
    "Channel",
    "DiscordHTTPError",
    "DiscordStandIn",
    "FormErrors",
    "Guild",
    "InitialResponse",
    "InteractionRecord",
    "InvalidInvocation",
    "Member",
    "MessageRevision",
    "Overwrite",
    "Perm",
    "Pings",
    "RecordedRequest",
    "RegisteredCommand",
    "Role",
    "StoredAttachment",
    "StoredMessage",
    "User",
    "Violation",
]
