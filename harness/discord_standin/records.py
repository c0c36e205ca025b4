"""What the stand-in records and a few constants shared by its modules."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_PREFIX = "/api/v10"
ADMINISTRATOR = 1 << 3
ALL_BUT_ADMIN = (1 << 41) - 1 - ADMINISTRATOR
# The permissions Discord checks when the bot posts, edits or reacts (`forbid_sends`).
ADD_REACTIONS = 1 << 6
SEND_MESSAGES = 1 << 11
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MISSING_PERMISSIONS = {"message": "Missing Permissions", "code": 50013}
INTERACTION_DEADLINE = 3.0  # seconds Discord waits for the first interaction callback


DISCORD_EPOCH_MS = 1_420_070_400_000


class Snowflakes:
    """Discord-like ids: milliseconds since 2015 in the high bits, so an id tells its time
    (discord.utils.snowflake_time) and later ids are larger."""

    def __init__(self) -> None:
        self._last = 0

    def __iter__(self) -> Snowflakes:
        return self

    def __next__(self) -> int:
        now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(now, self._last + 1)
        return self._last


def json_response(data: object, status: int = 200) -> web.Response:
    # discord.py checks the Content-Type exactly: with "; charset=utf-8" login fails.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def iso_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}+00:00"


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    description: str | None


@dataclass(frozen=True)
class ChannelRef:
    """A channel option's value in `invoke` (resolved like Discord does)."""

    id: int


@dataclass
class Sent:
    """One message the bot posted (a followup, an interaction reply, or an edit's result)."""

    id: int
    channel_id: int
    content: str
    attachments: list[Attachment]
    components: list[dict[str, Any]]
    flags: int
    interaction_token: str | None
    # As the bot sent it; None: not sent, and Discord then pings whatever the content mentions.
    allowed_mentions: dict[str, Any] | None = None

    @property
    def pings(self) -> list[str]:
        """The mentions in the content that would notify someone, by Discord's rules for
        `allowed_mentions` (e.g. ["@everyone", "<@123>"]); [] for a message that pings no one."""
        allowed = self.allowed_mentions
        parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse", []))
        users = {str(u) for u in (allowed or {}).get("users", [])}
        roles = {str(r) for r in (allowed or {}).get("roles", [])}
        out = [m for m in ("@everyone", "@here") if m in self.content and "everyone" in parse]
        for kind, ident in re.findall(r"<@([!&]?)(\d+)>", self.content):
            if kind == "&" and ("roles" in parse or ident in roles):
                out.append(f"<@&{ident}>")
            elif kind != "&" and ("users" in parse or ident in users):
                out.append(f"<@{ident}>")
        return out

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)

    @property
    def loading(self) -> bool:
        """A deferred interaction's "thinking" message, not yet replaced by a followup."""
        return bool(self.flags & 128)


@dataclass
class Interaction:
    """An interaction the stand-in sent to the bot, and everything the bot answered to it."""

    id: int
    token: str
    type: int
    payload: dict[str, Any]
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # {"type": n, "data": {...}}
    followups: list[Sent] = field(default_factory=list)
    original: Sent | None = None  # the @original message once the bot replied or deferred
    deleted_original: bool = False
    edited: bool = False  # the bot edited one of its messages (e.g. @original) with its token
    dispatched_at: float = 0.0  # time.monotonic() when the event was sent to the bot
    responded_at: float | None = None  # time.monotonic() of the bot's first callback

    @property
    def response_delay(self) -> float | None:
        """Seconds from the event to the bot's first callback (Discord allows 3)."""
        return None if self.responded_at is None else self.responded_at - self.dispatched_at

    @property
    def deferred(self) -> bool:
        return any(c["type"] == 5 for c in self.callbacks)

    @property
    def replies(self) -> list[Sent]:
        """Every message answering this interaction: the original reply, then followups."""
        # The first followup after a defer *is* the original message (Discord edits it).
        first = [self.original] if self.original else []
        return [m for m in first if all(f is not m for f in self.followups)] + self.followups

    @property
    def answered(self) -> bool:
        if self.followups or self.edited:
            return True
        if any(c["type"] == 6 for c in self.callbacks):
            return False  # @original is the button's message, as it was: not an answer yet
        return self.original is not None and bool(
            self.original.content or self.original.attachments
        )

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        for c in self.callbacks:
            if c["type"] == 8:
                return list(c["data"]["choices"])
        return None
