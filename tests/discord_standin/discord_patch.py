"""Point the installed discord.py at the stand-in, and put everything back afterwards.

discord.py builds every REST URL (bot routes, interaction callbacks and the interaction webhook)
from ``discord.http.Route.BASE``; 2.4+ connects to ``DiscordWebSocket.DEFAULT_GATEWAY`` while older
versions ask ``GET /gateway`` (which the stand-in answers); CDN assets use
``discord.asset.Asset.BASE``.
These are process-wide class attributes, so only one stand-in can be active at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_active: list[DiscordPatch] = []


@dataclass
class DiscordPatch:
    api_base: str  # e.g. http://127.0.0.1:PORT/api/v10
    gateway_url: str  # e.g. ws://127.0.0.1:PORT/gateway-ws
    cdn_base: str  # e.g. http://127.0.0.1:PORT/cdn
    _saved: list[tuple[Any, str, Any]] = field(default_factory=list)

    def apply(self) -> None:
        import discord.asset
        import discord.gateway
        import discord.http
        import yarl

        if _active:
            raise RuntimeError(
                "another DiscordStandIn is already patched into discord.py; stop it first"
            )
        targets: list[tuple[Any, str, Any]] = [
            (discord.http.Route, "BASE", self.api_base),
            (discord.asset.Asset, "BASE", self.cdn_base),
        ]
        if hasattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY"):
            targets.append(
                (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.gateway_url))
            )
        for owner, name, value in targets:
            self._saved.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, value)
        _active.append(self)

    def restore(self) -> None:
        while self._saved:
            owner, name, value = self._saved.pop()
            setattr(owner, name, value)
        if self in _active:
            _active.remove(self)


def api_version() -> int:
    """The REST/gateway version the installed discord.py speaks (10 unless changed)."""
    import discord.http

    return int(getattr(discord.http, "INTERNAL_API_VERSION", 10))
