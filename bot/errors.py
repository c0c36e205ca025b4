"""The bot's typed errors, and what a user is told when something fails.

Users see plain sentences: never an exception's name, a setting's name or a traceback. What an
admin needs (the exception, the setting to fix, the command and its options) goes to the log
with a short random error id, and the user's message carries the same id so the admin can find
the line.
"""

from __future__ import annotations

import re
import secrets

from engine.client import EngineUnavailable
from memebot.errors import MemebotError
from memebot.logs import get_logger

log = get_logger(__name__)


class UserError(MemebotError):
    """A mistake in the command's input, or a reason the command cannot run here; the message
    is written for the user and shown to them as is."""


class MissingPermissions(UserError):
    """The bot lacks permissions in the channel; the message names them."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


class PostRefused(MemebotError):
    """Discord refused (403) a message, an edit or a reaction although the interaction's
    permissions allowed it (they were stale, or an overwrite decides otherwise); the message
    names what the bot lacks and the error id of the one log line (bot/permissions.py). Not a
    UserError: the work was done, so a command's cooldown turn is not given back."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


# What must not reach a user: a setting (MEMEBOT_…), an exception's class name, a traceback.
INTERNALS = re.compile(
    r"MEMEBOT_[A-Z0-9_]+|\b[A-Z][A-Za-z0-9]*(?:Error|Exception|Timeout|Failure)\b|Traceback"
)
UNREACHABLE = "The meme engine is not reachable right now; try again in a minute"


def new_error_id() -> str:
    """Eight hex characters: short enough to quote, random enough to find one log line."""
    return secrets.token_hex(4)


def names_internals(text: str) -> bool:
    return INTERNALS.search(text) is not None


def user_text(error: BaseException, *, where: str, context: str = "") -> str:
    """What the user is told about `error` raised in `where` (e.g. "/meme"); logs what the
    user is not told, with an error id the message repeats. `context`: guild, channel, user,
    options, for the log line."""
    if isinstance(error, EngineUnavailable):
        eid = new_error_id()
        log.warning(
            "engine not reachable in %s (error id %s, %s): %s", where, eid, context, error.detail
        )
        return f"{UNREACHABLE} (error id `{eid}`)."
    if isinstance(error, MemebotError):
        text = str(error)
        if not names_internals(text):
            return text  # written for the user
        eid = new_error_id()
        log.warning("error in %s (error id %s, %s): %s", where, eid, context, text)
        return (
            f"I could not do that because of a problem on my side (error id `{eid}`); "
            "a server admin can look it up in the bot's log."
        )
    eid = new_error_id()
    log.error("unexpected error in %s (error id %s, %s)", where, eid, context, exc_info=error)
    return (
        f"Something went wrong on my side (error id `{eid}`); it has been logged. Please try again."
    )


def public_text(text: str, *, where: str) -> str:
    """`text` for a message in a channel (e.g. a retrain's outcome): as is unless it names
    internals, which are logged with an id the message gives instead."""
    if not names_internals(text):
        return text
    eid = new_error_id()
    log.warning("%s (error id %s): %s", where, eid, text)
    first = INTERNALS.search(text)
    assert first is not None
    head = text[: first.start()].rstrip(" :(")
    return f"{head} (a problem on my side, error id `{eid}`; details in the log)"
