"""Enumerations stored as check-constrained strings."""

from __future__ import annotations

import enum

from sqlalchemy import Enum


class Difficulty(enum.StrEnum):
    """How hard a question is; `mixed` only ever appears as a session filter."""

    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"


class QuestionKind(enum.StrEnum):
    """How a question is answered."""

    MULTIPLE_CHOICE = "multiple_choice"
    TRUE_FALSE = "true_false"
    FREE_TEXT = "free_text"


class SessionMode(enum.StrEnum):
    """Solo: one player. Channel: everyone in the channel may answer."""

    SOLO = "solo"
    CHANNEL = "channel"


class SessionStatus(enum.StrEnum):
    """Life cycle of a quiz session."""

    ACTIVE = "active"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


def string_enum(enum_type: type[enum.StrEnum], name: str) -> Enum:
    """A VARCHAR column with a named CHECK constraint listing the enum's values.

    Strings rather than PostgreSQL ENUM types: adding a value is then a plain
    constraint change that autogenerate sees and that runs inside a transaction.
    """
    return Enum(
        enum_type,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum_type),
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
