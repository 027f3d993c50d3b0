"""Errors a user can act on: the CLI prints their message as one line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Something the user gave us is wrong; the message says what and what to do."""


class SourceError(UserError):
    """A source could not be opened or stopped delivering frames."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, or does not fit the runtime."""


class EngineUnavailable(UserError):
    """The requested inference engine is not installed or does not work here."""
