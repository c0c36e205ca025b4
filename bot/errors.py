"""The bot's typed errors: what a user is told as is (UserError and its kinds)."""

from __future__ import annotations

from memebot.errors import MemebotError


class UserError(MemebotError):
    """A mistake in the command's input, or a reason the command cannot run here; the message
    is written for the user and shown to them as is."""


class MissingPermissions(UserError):
    """The bot lacks permissions in the channel; the message names them."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing
