"""Validation of message bodies, shared by channel messages, interaction responses and webhooks."""

from __future__ import annotations

from .errors import EMPTY_MESSAGE, DiscordHTTPError, FormErrors, Path, invalid_form_body
from .message_rules import check_message, is_empty_message
from .models import JSON, StoredMessage


def rule_name(errors: FormErrors, prefix: Path, family: str) -> str:
    """``message.content``, ``message.components``...: the first offending top-level field."""
    first = errors.items[0].path[len(prefix) :]
    return f"{family}.{first[0]}" if first else f"{family}.body"


def check_message_body(
    payload: JSON, *, file_count: int, prefix: Path = (), existing: StoredMessage | None = None
) -> None:
    """Raise Discord's 400 (50035 or 50006) for a create body, or an edit of ``existing``."""
    errors = FormErrors()
    check_message(payload, prefix, errors, file_count=file_count)
    if errors:
        raise invalid_form_body(errors, rule_name(errors, prefix, "message"))
    if existing is None:
        empty = is_empty_message(payload, file_count=file_count)
    else:
        merged: JSON = {
            "content": payload.get("content", existing.content),
            "embeds": payload.get("embeds", existing.embeds),
            "components": payload.get("components", existing.components),
            "attachments": payload.get("attachments", [a.id for a in existing.attachments]),
        }
        empty = is_empty_message(merged, file_count=file_count)
    if empty:
        raise DiscordHTTPError(
            400, EMPTY_MESSAGE, "Cannot send an empty message", rule="message.empty"
        )
