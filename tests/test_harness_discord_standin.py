"""The Discord stand-in's own behaviours that tests of the bot rely on, over real HTTP: rate
limit headers, per-route buckets, the global limit and 429 with Retry-After as discord.py reads
them, Discord's rules for whom a message's `allowed_mentions` lets it ping, and the 403s of
`forbid_sends` (what Discord checks when the bot posts, edits or reacts)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from harness.bot import standin
from harness.discord_standin import (
    ADD_REACTIONS,
    API_PREFIX,
    ATTACH_FILES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    DiscordStandIn,
    RateLimits,
    Sent,
)

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


def with_file(payload: dict[str, Any]) -> aiohttp.FormData:
    """A multipart body as discord.py sends one with a file."""
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    form.add_field("files[0]", b"\x89PNG", filename="meme.png", content_type="image/png")
    return form


async def refused(response: aiohttp.ClientResponse) -> bool:
    """Whether `response` is Discord's Missing Permissions (403, code 50013)."""
    if response.status != 403:
        return False
    return bool(await response.json() == {"message": "Missing Permissions", "code": 50013})


def test_forbid_sends_refuses_what_discord_checks_whatever_app_permissions_say() -> None:
    async def body(api: DiscordStandIn, http: aiohttp.ClientSession) -> None:
        shut, open_ = api.channel_ids[0], 900010
        api.channel_ids.append(open_)
        base = f"{api.url}{API_PREFIX}"
        rec = api._interaction(2, {}, user_id=800100, admin=False, channel_id=shut)
        hook = f"{base}/webhooks/{api.app_id}/{rec.token}"
        # The interaction still claims every permission there (a stale or overridden state).
        claimed = int(rec.payload["app_permissions"])
        assert claimed & (SEND_MESSAGES | ATTACH_FILES | ADD_REACTIONS) == (
            SEND_MESSAGES | ATTACH_FILES | ADD_REACTIONS
        )
        api.forbid_sends[shut] = SEND_MESSAGES
        text = {"content": "hi"}
        assert await refused(await http.post(f"{base}/channels/{shut}/messages", json=text))
        assert (await http.post(f"{base}/channels/{open_}/messages", json=text)).status == 200
        own, other = api.post(shut, "progress"), api.post(open_, "progress")
        edit = {"content": "epoch 1"}
        shut_msg = f"{base}/channels/{shut}/messages/{own.id}"
        assert await refused(await http.patch(shut_msg, json=edit))
        assert own.content == "progress", "a refused edit changes nothing"
        ok = await http.patch(f"{base}/channels/{open_}/messages/{other.id}", json=edit)
        assert ok.status == 200 and other.content == "epoch 1"
        # An interaction's answer is a webhook message: Send Messages is not asked for.
        assert (await http.post(hook, json=text)).status == 200
        assert (await http.post(hook, data=with_file(text))).status == 200
        sent_before = len(api.sent)
        api.forbid_sends[shut] = ATTACH_FILES  # its files are: the bot's Attach Files
        assert await refused(await http.post(hook, data=with_file(text)))
        original = f"{hook}/messages/@original"
        assert await refused(await http.patch(original, data=with_file(text)))
        assert (await http.patch(original, json=edit)).status == 200
        assert (await http.post(hook, json=text)).status == 200
        channel = f"{base}/channels/{shut}/messages"
        assert await refused(await http.post(channel, data=with_file(text)))
        assert (await http.post(channel, json=text)).status == 200
        assert not any(s.attachments for s in api.sent[sent_before:]), "no refused file stored"
        # A reaction: Read Message History always, Add Reactions for a new emoji only.
        react = f"{base}/channels/{shut}/messages/{own.id}/reactions/{{}}/@me"
        api.forbid_sends[shut] = ADD_REACTIONS
        assert await refused(await http.put(react.format("%F0%9F%91%8D")))
        assert api.bot_reactions(own.id) == []
        await api.react(own.id, "👍", 31, send=False)  # a user put 👍 there first
        assert (await http.put(react.format("%F0%9F%91%8D"))).status == 204
        api.forbid_sends[shut] = READ_MESSAGE_HISTORY
        assert await refused(await http.put(react.format("%F0%9F%91%8E")))
        assert api.bot_reactions(own.id) == ["👍"]
        del api.forbid_sends[shut]  # granted again: everything goes through
        assert (await http.put(react.format("%F0%9F%91%8E"))).status == 204
        assert (await http.post(channel, data=with_file(text))).status == 200
        assert api.unhandled == []

    run(body)


def test_a_buttons_deferred_update_edits_the_message_the_button_is_on() -> None:
    async def body(api: DiscordStandIn, http: aiohttp.ClientSession) -> None:
        pager = api.post_message(api.channel_ids[0], "page 1")
        msg = api.messages[pager.id]
        rec = api._interaction(
            3, {}, user_id=800100, admin=False, channel_id=pager.channel_id, message=msg
        )
        base = f"{api.url}{API_PREFIX}"
        ack = await http.post(
            f"{base}/interactions/{rec.id}/{rec.token}/callback", json={"type": 6}
        )
        assert ack.status == 200 and rec.original is pager
        assert not rec.answered, "the button's message as it was is no answer"
        original = f"{base}/webhooks/{api.app_id}/{rec.token}/messages/@original"
        edit = await http.patch(original, json={"content": "page 2"})
        assert edit.status == 200 and (await edit.json())["id"] == str(pager.id)
        assert pager.content == "page 2" and rec.answered and len(api.sent) == 1
        api.messages.pop(pager.id)  # dismissed (or deleted) meanwhile
        gone = await http.patch(original, json={"content": "page 3"})
        assert gone.status == 404 and (await gone.json())["code"] == 10008
        assert pager.content == "page 2"

    run(body)
