"""Discord's error bodies: JSON error codes and the nested "Invalid Form Body" error tree."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PathPart = str | int
Path = tuple[PathPart, ...]

# JSON error codes, https://discord.com/developers/docs/topics/opcodes-and-status-codes
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
UNKNOWN_APPLICATION_COMMAND = 10063
CANNOT_EDIT_OTHERS_MESSAGE = 50005
EMPTY_MESSAGE = 50006
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035
ALREADY_ACKNOWLEDGED = 40060
ENTITY_TOO_LARGE = 40005


@dataclass(frozen=True)
class FieldError:
    """One entry of an ``_errors`` list, e.g. ``BASE_TYPE_MAX_LENGTH``."""

    path: Path
    code: str
    message: str


@dataclass
class FormErrors:
    """Collects field errors; renders them as Discord's nested ``errors`` object.

    Discord reports every problem of a body at once, keyed by the JSON path of the field
    (list indexes become string keys), e.g. ``{"0": {"name": {"_errors": [...]}}}``.
    """

    items: list[FieldError] = field(default_factory=list)

    def add(self, path: Path, code: str, message: str) -> None:
        self.items.append(FieldError(path, code, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator[FieldError]:
        return iter(self.items)

    def to_tree(self) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        for item in self.items:
            node = tree
            for part in item.path:
                node = node.setdefault(str(part), {})
            node.setdefault("_errors", []).append({"code": item.code, "message": item.message})
        return tree

    def summary(self) -> str:
        return "; ".join(
            f"{'.'.join(str(p) for p in item.path) or '<root>'}: {item.code} {item.message}"
            for item in self.items
        )


class DiscordHTTPError(Exception):
    """Raised by request handlers; rendered as Discord's JSON error body.

    ``rule`` names the documented rule that was broken. Errors with a rule are recorded as
    violations; errors without one (e.g. fetching a deleted message) are ordinary outcomes
    a bot may legitimately handle.
    """

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: FormErrors | None = None,
        rule: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.rule = rule

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors.to_tree()
        return body

    def detail(self) -> str:
        return self.errors.summary() if self.errors else self.message


def invalid_form_body(errors: FormErrors, rule: str) -> DiscordHTTPError:
    return DiscordHTTPError(400, INVALID_FORM_BODY, "Invalid Form Body", errors=errors, rule=rule)


def not_found(code: int, what: str, *, rule: str | None = None) -> DiscordHTTPError:
    return DiscordHTTPError(404, code, f"Unknown {what}", rule=rule)
