"""Discord's rate limits, as the stand-in applies them when `DiscordStandIn.rate_limits` is set.

Per-route buckets: a route (method + path with ids blanked) and its major parameter (the
channel, guild, or webhook id and token) share a fixed window of `limit` requests per `per`
seconds. Every answer carries the headers discord.py reads (`X-RateLimit-Limit`, `-Remaining`,
`-Reset`, `-Reset-After`, `-Bucket`); one over the limit is a 429 with `Retry-After`, a JSON
body with `retry_after` and `global`, `X-RateLimit-Scope`, and a `Via` header (discord.py
takes a 429 without one for a Cloudflare ban). The global limit (50 requests a second per bot)
counts every route but the interaction ones (callbacks and followups), as Discord's does.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

# (method, route template) -> (limit, per seconds): Discord's documented or observed values.
DISCORD_ROUTES: dict[tuple[str, str], tuple[int, float]] = {
    ("PUT", "/channels/{channel}/messages/{id}/reactions/{id}/@me"): (1, 0.25),
    ("DELETE", "/channels/{channel}/messages/{id}/reactions/{id}/@me"): (1, 0.25),
    ("DELETE", "/channels/{channel}/messages/{id}/reactions/{id}/{id}"): (1, 0.25),
    ("GET", "/channels/{channel}/messages/{id}/reactions/{id}"): (5, 1.0),
    ("POST", "/channels/{channel}/messages"): (5, 5.0),
    ("PATCH", "/channels/{channel}/messages/{id}"): (5, 5.0),
    ("PUT", "/applications/{id}/commands"): (2, 60.0),
    ("PUT", "/applications/{id}/guilds/{guild}/commands"): (2, 60.0),
    ("POST", "/webhooks/{webhook}/{token}"): (5, 2.0),
    ("PATCH", "/webhooks/{webhook}/{token}/messages/@original"): (5, 2.0),
}
DEFAULT_ROUTE = (50, 1.0)
GLOBAL_PER_S = 50
# Path segments after which the next one is a major parameter (its own bucket per value).
MAJOR = {"channels": "{channel}", "guilds": "{guild}"}


def route_of(parts: list[str]) -> tuple[str, str, bool]:
    """(route template, major parameter, whether it is an interaction route) for a path's
    segments under /api/v10: ids (and a reaction's emoji) become `{id}`; a channel or guild
    id, or a webhook's id and token, are the major parameter."""
    interaction = parts[:1] in (["interactions"], ["webhooks"])
    if interaction:  # /webhooks/{id}/{token}/..., /interactions/{id}/{token}/callback
        head = f"/{parts[0]}/{{{'webhook' if parts[0] == 'webhooks' else 'interaction'}}}/{{token}}"
        major, rest = "+".join(parts[1:3]), parts[3:]
    else:
        head, major, rest = "", "", parts
    template: list[str] = []
    for i, seg in enumerate(rest):
        prev = rest[i - 1] if i else ""
        if prev in MAJOR and not major:
            template.append(MAJOR[prev])
            major = seg
        elif seg.isdigit() or (prev == "reactions" and seg != "@me"):
            template.append("{id}")
        else:
            template.append(seg)
    return head + "".join("/" + t for t in template), major, interaction


@dataclass
class Window:
    limit: int
    per: float
    reset_at: float = 0.0
    used: int = 0

    def take(self, now: float) -> bool:
        if now >= self.reset_at:
            self.reset_at, self.used = now + self.per, 0
        if self.used >= self.limit:
            return False
        self.used += 1
        return True


@dataclass
class Verdict:
    headers: dict[str, str]
    retry_after: float | None = None  # set: answer 429
    is_global: bool = False

    @property
    def body(self) -> dict[str, object]:
        return {
            "message": "You are being rate limited.",
            "retry_after": round(self.retry_after or 0.0, 3),
            "global": self.is_global,
            "code": 0,
        }


@dataclass
class RateLimits:
    """The limits in force; `limited` lists every 429 given ("METHOD template", global?)."""

    routes: dict[tuple[str, str], tuple[int, float]] = field(
        default_factory=lambda: dict(DISCORD_ROUTES)
    )
    global_per_s: int = GLOBAL_PER_S
    limited: list[tuple[str, bool]] = field(default_factory=list)
    _buckets: dict[tuple[str, str, str], Window] = field(default_factory=dict)
    _global: Window = field(default_factory=lambda: Window(GLOBAL_PER_S, 1.0))

    def take(self, method: str, parts: list[str]) -> Verdict:
        if parts[:1] == ["uploads"]:
            return Verdict({})  # the stand-in's CDN for attachments: not the API
        now = time.monotonic()
        template, major, interaction = route_of(parts)
        limit, per = self.routes.get((method, template), DEFAULT_ROUTE)
        key = (method, template, major)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Window(limit, per)
        self._global.limit = self.global_per_s
        route_name = f"{method} {template}"
        if not interaction and not self._global.take(now):
            retry = max(self._global.reset_at - now, 0.001)
            self.limited.append((route_name, True))
            return Verdict(self._limited_headers(retry, "global"), retry, is_global=True)
        ok = bucket.take(now)
        reset_after = max(bucket.reset_at - now, 0.0)
        headers = {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(max(bucket.limit - bucket.used, 0)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(route_name.encode()).hexdigest()[:16],
        }
        if ok:
            return Verdict(headers)
        self.limited.append((route_name, False))
        return Verdict(headers | self._limited_headers(reset_after, "user"), reset_after)

    @staticmethod
    def _limited_headers(retry: float, scope: str) -> dict[str, str]:
        headers = {
            "Retry-After": str(max(1, math.ceil(retry))),  # whole seconds, as Discord sends
            "X-RateLimit-Scope": scope,
            "Via": "1.1 google",
        }
        if scope == "global":
            headers["X-RateLimit-Global"] = "true"
        return headers
