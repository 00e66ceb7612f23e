"""quizbot's own exceptions: what the services and the bot catch and explain to users."""

from __future__ import annotations


class QuizbotError(Exception):
    """Base of every error quizbot raises on purpose; the message is fit for a user."""


class NotFoundError(QuizbotError):
    """A row that the caller named does not exist."""


class ConflictError(QuizbotError):
    """A write broke a uniqueness or integrity rule."""


class ActiveSessionError(ConflictError):
    """A quiz is already running where a new one was asked for."""


class InvalidInputError(QuizbotError):
    """Input from a user or a file is malformed; the message says where and why."""
