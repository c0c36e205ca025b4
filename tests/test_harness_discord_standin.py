"""The Discord stand-in's own behaviours that tests of the bot rely on, over real HTTP: rate
limit headers, per-route buckets, the global limit and 429 with Retry-After as discord.py reads
them, and Discord's rules for whom a message's `allowed_mentions` lets it ping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from harness.bot import standin
from harness.discord_standin import API_PREFIX, DiscordStandIn, RateLimits, Sent

Body = Callable[[DiscordStandIn, aiohttp.ClientSession], Awaitable[None]]


def run(body: Body) -> None:
    async def go() -> None:
        async with standin() as api, aiohttp.ClientSession() as http:
            await body(api, http)

    asyncio.run(go())


def test_reaction_bucket_headers_and_429_with_retry_after() -> None:
    async def body(api: DiscordStandIn, http: aiohttp.ClientSession) -> None:
        api.rate_limits = RateLimits()
        api.channel_ids.append(900010)
        a, b = api.post(api.channel_ids[0]), api.post(900010)
        url = f"{api.url}{API_PREFIX}/channels/{{}}/messages/{{}}/reactions/%F0%9F%91%8D/@me"
        first = await http.put(url.format(a.channel_id, a.id))
        assert first.status == 204
        h = first.headers
        assert (h["X-RateLimit-Limit"], h["X-RateLimit-Remaining"]) == ("1", "0")
        assert 0 < float(h["X-RateLimit-Reset-After"]) <= 0.25
        assert float(h["X-RateLimit-Reset"]) > 1e9 and h["X-RateLimit-Bucket"]
        second = await http.put(url.format(a.channel_id, a.id))
        assert second.status == 429
        data: dict[str, Any] = await second.json()
        assert data["global"] is False and 0 < data["retry_after"] <= 0.25
        assert second.headers["Retry-After"] == "1" and second.headers["Via"]
        assert second.headers["X-RateLimit-Scope"] == "user"
        # Another channel is another bucket (its id is the route's major parameter).
        assert (await http.put(url.format(b.channel_id, b.id))).status == 204
        await asyncio.sleep(data["retry_after"])
        assert (await http.put(url.format(a.channel_id, a.id))).status == 204
        route = "PUT /channels/{channel}/messages/{id}/reactions/{id}/@me"
        assert api.rate_limits.limited == [(route, False)]

    run(body)


def test_global_limit_spares_interaction_routes() -> None:
    async def body(api: DiscordStandIn, http: aiohttp.ClientSession) -> None:
        api.rate_limits = RateLimits(global_per_s=5)
        statuses = [(await http.get(f"{api.url}{API_PREFIX}/users/@me")).status for _ in range(5)]
        assert statuses == [200] * 5
        over = await http.get(f"{api.url}{API_PREFIX}/channels/{api.channel_ids[0]}")
        assert over.status == 429
        data = await over.json()
        assert data["global"] is True and 0 < data["retry_after"] <= 1.0
        assert over.headers["X-RateLimit-Global"] == "true" and over.headers["Via"]
        # Interaction followups are not under the global limit (an unknown token: 404).
        hook = await http.post(f"{api.url}{API_PREFIX}/webhooks/{api.app_id}/nope", json={})
        assert hook.status == 404
        await asyncio.sleep(data["retry_after"])
        assert (await http.get(f"{api.url}{API_PREFIX}/users/@me")).status == 200

    run(body)


def sent(content: str, allowed: dict[str, Any] | None) -> Sent:
    return Sent(1, 2, content, [], [], 0, None, allowed_mentions=allowed)


@pytest.mark.parametrize(
    ("allowed", "pings"),
    [
        (None, ["@everyone", "<@55>", "<@&66>"]),  # not sent: Discord parses everything
        ({"parse": []}, []),
        ({"parse": ["users"]}, ["<@55>"]),
        ({"parse": [], "roles": ["66"]}, ["<@&66>"]),
        ({"parse": ["everyone"]}, ["@everyone"]),
    ],
)
def test_pings_follow_allowed_mentions(allowed: dict[str, Any] | None, pings: list[str]) -> None:
    assert sent("hey @everyone, <@55> and <@&66>", allowed).pings == pings
