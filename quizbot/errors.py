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


class NothingDueError(InvalidInputError):
    """A review was asked for while none of the member's questions is due; the message
    says when the next one will be."""


class DatabaseUnavailableError(QuizbotError):
    """The database cannot be reached (or the pool is exhausted); try again shortly."""

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        wait = f" in {max(1, round(retry_after))} seconds" if retry_after else " in a few seconds"
        super().__init__(message or f"the database is unavailable, try again{wait}")
        self.retry_after = retry_after
