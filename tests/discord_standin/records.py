"""What the stand-in records and a few constants shared by its modules."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_PREFIX = "/api/v10"
ADMINISTRATOR = 1 << 3
ALL_BUT_ADMIN = (1 << 41) - 1 - ADMINISTRATOR


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

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)


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

    @property
    def deferred(self) -> bool:
        return any(c["type"] == 5 for c in self.callbacks)

    @property
    def replies(self) -> list[Sent]:
        """Every message answering this interaction: the original reply, then followups."""
        return ([self.original] if self.original else []) + self.followups

    @property
    def answered(self) -> bool:
        return bool(self.followups) or (
            self.original is not None and bool(self.original.content or self.original.attachments)
        )

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        for c in self.callbacks:
            if c["type"] == 8:
                return list(c["data"]["choices"])
        return None
