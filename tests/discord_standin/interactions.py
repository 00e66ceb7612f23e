"""Interactions the stand-in sent, and everything the bot did in answer to them."""

# The waiting helpers take a ``timeout`` argument on purpose: it is the test-facing API.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .models import FLAG_EPHEMERAL, JSON, StoredMessage, Violation
from .world import World

T = TypeVar("T")

# Interaction types and callback types, https://discord.com/developers/docs/interactions/receiving-and-responding
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

CALLBACK_NAMES = {
    PONG: "PONG",
    CHANNEL_MESSAGE: "CHANNEL_MESSAGE_WITH_SOURCE",
    DEFERRED_CHANNEL_MESSAGE: "DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE",
    DEFERRED_UPDATE_MESSAGE: "DEFERRED_UPDATE_MESSAGE",
    UPDATE_MESSAGE: "UPDATE_MESSAGE",
    AUTOCOMPLETE_RESULT: "APPLICATION_COMMAND_AUTOCOMPLETE_RESULT",
    MODAL: "MODAL",
}


@dataclass(frozen=True)
class InitialResponse:
    """The bot's accepted initial callback (``POST /interactions/{id}/{token}/callback``)."""

    type: int
    data: JSON | None
    elapsed: float  # seconds between INTERACTION_CREATE leaving the stand-in and the callback

    @property
    def type_name(self) -> str:
        return CALLBACK_NAMES.get(self.type, str(self.type))

    @property
    def ephemeral(self) -> bool:
        return bool(self.data and int(self.data.get("flags") or 0) & FLAG_EPHEMERAL)

    @property
    def allowed_mentions(self) -> JSON | None:
        return self.data.get("allowed_mentions") if self.data else None


@dataclass(eq=False)
class InteractionRecord:
    """One interaction: the payload sent to the bot, its initial response, follow-ups, errors.

    Messages are looked up live in the stand-in, so ``original_message`` reflects later edits.
    """

    world: World = field(repr=False)
    id: int
    token: str
    type: int
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: JSON = field(repr=False)
    name: str | None = None  # qualified command name, e.g. "quiz start"
    custom_id: str | None = None
    source_message_id: int | None = None  # the message a component was clicked on
    parent: InteractionRecord | None = field(
        default=None, repr=False
    )  # for a modal submit: the interaction that opened it
    sent_at: float | None = None  # loop time the INTERACTION_CREATE was written to the socket
    response: InitialResponse | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal_submitted: bool = False
    expired: bool = False  # deadline passed without an initial response
    errors: list[Violation] = field(default_factory=list)
    _sent: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    # --- views on what happened ---------------------------------------------------------------

    @property
    def responded(self) -> bool:
        return self.response is not None

    @property
    def ephemeral(self) -> bool:
        return bool(self.response and self.response.ephemeral)

    @property
    def original_message(self) -> StoredMessage | None:
        """The response message (for component updates: the message the component was on)."""
        if self.original_message_id is None:
            return None
        return self.world.messages.get(self.original_message_id)

    @property
    def followups(self) -> list[StoredMessage]:
        return [self.world.messages[m] for m in self.followup_ids]

    @property
    def modal(self) -> JSON | None:
        """The modal the bot opened (callback data of a type 9 response)."""
        if self.response and self.response.type == MODAL:
            return self.response.data
        return None

    @property
    def autocomplete_choices(self) -> list[JSON] | None:
        if self.response and self.response.type == AUTOCOMPLETE_RESULT and self.response.data:
            return list(self.response.data.get("choices") or [])
        return None

    @property
    def source_message(self) -> StoredMessage | None:
        return self.world.messages.get(self.source_message_id) if self.source_message_id else None

    # --- waiting ------------------------------------------------------------------------------

    def mark_sent(self, at: float) -> None:
        """Called when the INTERACTION_CREATE leaves the socket: the response clock starts."""
        self.sent_at = at
        self._sent.set()

    async def wait_sent(self) -> None:
        await self._sent.wait()

    async def wait_response(self, timeout: float = 5.0) -> InitialResponse:
        """Wait for the initial response; else ``TimeoutError`` (listing the errors seen)."""
        try:
            return await self.world.changes.wait_until(
                lambda: self.response, timeout, f"a response to {self}"
            )
        except TimeoutError as exc:
            if self.errors:
                raise TimeoutError(
                    f"{exc}; errors returned to the bot: {[str(e) for e in self.errors]}"
                ) from None
            raise

    async def wait_followups(self, count: int = 1, timeout: float = 5.0) -> list[StoredMessage]:
        """Wait until at least ``count`` follow-up messages exist; returns all of them."""
        return await self.world.changes.wait_until(
            lambda: self.followups if len(self.followup_ids) >= count else None,
            timeout,
            f"{count} follow-ups",
        )

    async def wait_until(
        self,
        predicate: Callable[[InteractionRecord], T | None],
        timeout: float = 5.0,
    ) -> T:
        return await self.world.changes.wait_until(
            lambda: predicate(self), timeout, "interaction condition"
        )

    async def wait_original_message(
        self,
        predicate: Callable[[StoredMessage], bool] | None = None,
        timeout: float = 5.0,
    ) -> StoredMessage:
        """Wait for the original response (not a loading placeholder) matching ``predicate``."""

        def ready() -> StoredMessage | None:
            message = self.original_message
            if message is None or message.loading or message.deleted:
                return None
            return message if predicate is None or predicate(message) else None

        return await self.world.changes.wait_until(ready, timeout, "the original response message")

    def __str__(self) -> str:
        label = self.name or self.custom_id or ""
        return f"<interaction {self.id} type={self.type} {label!r}>"
