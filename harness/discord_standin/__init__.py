"""A Discord API stand-in on loopback for the real, unmodified discord.py client.

One aiohttp server serves the REST routes the bot uses (under /api/v10) and the gateway
websocket (/gateway). Point discord.py at it with `standin.patch_discord()` (sets
`discord.http.Route.BASE` and `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`; the fixture
restores them). Tests inject INTERACTION_CREATE and MESSAGE_REACTION_ADD/REMOVE events with
`invoke`, `autocomplete`, `press_button`, `react` and `unreact`, message deletes (`delete_message`,
`bulk_delete`) and reaction clears (`clear_reactions`), each sent only to a session whose
intents ask for it (`identify_intents`), and read back what the bot sent:
interaction callbacks, followups with their attachments, reactions. `wait_until(predicate)`
wakes on every recorded request (no sleeps).

Scope: one application (owned by `owner`, or by a `team`), one bot user, one guild with one
text channel (more channels on request), any number of users. Messages and reactions are kept
in memory; reaction routes behave like Discord's (PUT is idempotent, GET pages with `after` and
`limit`). Replies are plain-text JSON frames whatever compression the client asks for, which
discord.py accepts.
Unknown routes answer 404 and are listed in `unhandled` so a test can assert there were none.

Like Discord: the first followup after a deferred response replaces the "thinking" @original
message (same id); an interaction whose first callback comes more than 3 s after the event is
refused (404, code 10062, listed in `late_callbacks`); ids are time-based snowflakes; a guild
is on shard `(guild_id >> 22) % shard_count`. `forbid_application` makes the application info
answer 403 (who owns the bot). `forbid_sends[channel]` is
what Discord finds the bot lacks there when it acts, whatever the interaction's
`app_permissions` said (a stale or overridden state): Send Messages, Attach Files, Add
Reactions, Read Message History, checked as Discord does (403, code 50013, see `Rest`);
a channel in `forbid_reads`
answers 403 (Missing Access) to every read of its messages, and a channel not in
`channel_ids` (deleted, or another guild's) 404 (Unknown Channel) to every route.
Command syncs (PUT) replace the set registered globally or in one guild (`registered`,
`visible_commands`); a guild in `forbid_command_sync` answers 403 to its command routes.
With `rate_limits = RateLimits()` every REST answer carries Discord's rate limit headers and
a request over a route's bucket or the global limit is answered 429 with `Retry-After`
(ratelimits.py). Each message keeps the `allowed_mentions` it was sent with, and
`Sent.pings` says whom it would notify. `app_permissions` sets what the app may do per
channel (sent with each interaction) and `overwrites` a channel's permission overwrites
(private channels). Each interaction records when the bot first
answered it (`responded_at`, `response_delay`). `route_delays` slows a route
(`"GET /oauth2/applications/@me"`: seconds); an interaction token expires after
`token_lifetime` (15 min; its followups and edits then answer 401, code 50027); a followup
whose attachments exceed `attachment_limit` (10 MiB) answers 413 (code 40005).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from harness.discord_standin.ratelimits import RateLimits
from harness.discord_standin.records import (
    ADD_REACTIONS,
    ADMINISTRATOR,
    ALL_BUT_ADMIN,
    API_PREFIX,
    ATTACH_FILES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    Attachment,
    ChannelRef,
    Interaction,
    Sent,
    Snowflakes,
)
from harness.discord_standin.rest import Rest

__all__ = [
    "ADD_REACTIONS",
    "ADMINISTRATOR",
    "ALL_BUT_ADMIN",
    "API_PREFIX",
    "ATTACH_FILES",
    "GUILD_MESSAGES",
    "GUILD_MESSAGE_REACTIONS",
    "PRIVILEGED_INTENTS",
    "READ_MESSAGE_HISTORY",
    "SEND_MESSAGES",
    "Attachment",
    "ChannelRef",
    "DiscordStandIn",
    "Interaction",
    "RateLimits",
    "Sent",
]


# Which intent bit an event needs (Discord's gateway intents); events not listed need none.
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message content
EVENT_INTENTS = (
    ("MESSAGE_REACTION_", GUILD_MESSAGE_REACTIONS),
    ("MESSAGE_", GUILD_MESSAGES),
)


def emoji_payload(emoji: str) -> dict[str, Any]:
    """A reaction emoji as the REST routes name it (`👍` or a custom `name:id`) as a payload."""
    name, _, eid = emoji.partition(":")
    return {"id": eid, "name": name} if eid else {"id": None, "name": emoji}


class DiscordStandIn(Rest):
    def __init__(self, *, guild_id: int = 900001, channel_id: int = 900002) -> None:
        self.app_id = 700001
        self.bot_user = self.user(700001, "memebot", bot=True)
        self.owner = self.user(800001, "owner")  # the application's owner and the guild's
        # With a team ({user id: role}) the application is team-owned (Payloads.application).
        self.team: dict[int, str] | None = None
        self.forbid_application = False  # True: the application info answers 403
        self.guild_id = guild_id
        self.channel_ids = [channel_id]
        self.nsfw_channel_ids: set[int] = set()  # age-restricted; set before the bot connects
        self.admin_role_id = 900003
        self._ids = Snowflakes()
        self._seq = itertools.count(2)
        self.messages: dict[int, dict[str, Any]] = {}
        self.sent: list[Sent] = []
        # (message id, emoji) -> user ids, in the order they reacted
        self.reactions: dict[tuple[int, str], list[int]] = defaultdict(list)
        self.interactions: dict[str, Interaction] = {}  # by token
        self.uploads: dict[int, Attachment] = {}  # attachments users sent with a command
        self.command_ids: dict[str, int] = {}
        self.command_puts: list[tuple[str, list[dict[str, Any]]]] = []  # (path, payload)
        # The commands registered now, globally (None) and per guild, as Discord keeps them.
        self.registered: dict[int | None, list[dict[str, Any]]] = {}
        self.forbid_command_sync: set[int] = set()  # guilds whose command routes answer 403
        self.unhandled: list[str] = []
        self.late_callbacks: list[Interaction] = []  # answered after Discord's 3 s: refused
        # Channel -> the permission bits (SEND_MESSAGES, ATTACH_FILES, ADD_REACTIONS,
        # READ_MESSAGE_HISTORY) Discord refuses the bot there, apart from `app_permissions`.
        self.forbid_sends: dict[int, int] = {}
        # Channels whose messages the bot may not read (lost Read Message History): 403.
        self.forbid_reads: set[int] = set()
        # "METHOD /path" (as in `requests`) -> seconds the stand-in waits before answering.
        self.route_delays: dict[str, float] = {}
        # An interaction's token (followups, edits of its messages) lasts 15 minutes; after
        # that its webhook routes answer 401 (code 50027).
        self.token_lifetime = 15 * 60.0
        # A followup whose attachments together exceed this answers 413 (code 40005).
        self.attachment_limit = 10 * 1024 * 1024
        self.rate_limits: RateLimits | None = None  # set: Discord's buckets and global limit
        # The app's resolved permissions per channel (an interaction's `app_permissions`);
        # a channel not listed: everything but Administrator.
        self.app_permissions: dict[int, int] = {}
        # Permission overwrites per channel (a private channel denies @everyone, whose role id
        # is the guild id, VIEW_CHANNEL); members' permissions follow them in discord.py.
        self.overwrites: dict[int, list[dict[str, Any]]] = {}
        # Awaited after a followup is stored and before the bot gets its answer.
        self.on_followup: Callable[[Sent], Awaitable[None]] | None = None
        self.requests: list[str] = []
        self.identifies = 0
        self.identify_intents: list[int] = []  # what each IDENTIFY asked for
        self._intents: dict[int, int] = {}  # id(socket) -> its session's intents
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._patches: list[tuple[Any, str, Any]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py's REST base and default gateway at this server (then restore)."""
        import discord.gateway
        import discord.http
        import yarl

        old_base = discord.http.Route.BASE
        old_gw = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.url + API_PREFIX
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gw

    # -- injecting events --------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send an event to every connected session whose intents ask for it (like Discord,
        a session without the event's intent never gets it)."""
        frame = json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data})
        if not self._sockets:
            raise RuntimeError("no bot is connected to the stand-in gateway")
        need = next((bit for prefix, bit in EVENT_INTENTS if event.startswith(prefix)), 0)
        for ws in list(self._sockets):
            if need & self._intents.get(id(ws), 0) == need:
                await ws.send_str(frame)

    async def invalidate_session(self) -> None:
        """Op 9 (not resumable): the bot must IDENTIFY again; events meanwhile are lost."""
        for ws in list(self._sockets):
            self._sockets.remove(ws)
            await ws.send_str(json.dumps({"op": 9, "d": False}))

    def _interaction(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user_id: int,
        admin: bool,
        channel_id: int | None,
        message: dict[str, Any] | None = None,
        roles: tuple[int, ...] = (),
    ) -> Interaction:
        iid = next(self._ids)
        token = f"tok{iid}"
        channel = self.channel(channel_id or self.channel_ids[0])
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.app_id),
            "type": itype,
            "data": data,
            "guild_id": str(self.guild_id),
            "channel_id": channel["id"],
            "channel": channel,
            "member": self.member(user_id, admin=admin, roles=roles),
            "token": token,
            "version": 1,
            "app_permissions": str(self.app_permissions.get(int(channel["id"]), ALL_BUT_ADMIN)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": self.attachment_limit,
        }
        if message is not None:
            payload["message"] = message
        rec = Interaction(iid, token, itype, payload, dispatched_at=time.monotonic())
        self.interactions[token] = rec
        return rec

    @staticmethod
    def _options(options: dict[str, Any], focused: str | None = None) -> list[dict[str, Any]]:
        out = []
        for name, value in options.items():
            kind = 3
            if isinstance(value, bool):
                kind = 5
            elif isinstance(value, int):
                kind = 4
            elif isinstance(value, Attachment):
                kind, value = 11, "0"  # the id is filled in by invoke
            elif isinstance(value, ChannelRef):
                kind, value = 7, str(value.id)
            opt: dict[str, Any] = {"name": name, "type": kind, "value": value}
            if name == focused:
                opt["focused"] = True
            out.append(opt)
        return out

    async def invoke(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int = 800100,
        admin: bool = False,
        channel_id: int | None = None,
        roles: tuple[int, ...] = (),
    ) -> Interaction:
        """Send a slash command (type 2). An `Attachment` value becomes an attachment option,
        served by this server so the bot can download it. `roles`: the member's role ids
        (the guild payload lists only @everyone and the admin role, as if not cached)."""
        options = options or {}
        opts = self._options(options)
        resolved: dict[str, Any] = {}
        for opt in opts:
            value = options[opt["name"]]
            if isinstance(value, ChannelRef):
                resolved.setdefault("channels", {})[str(value.id)] = self.channel(value.id) | {
                    "permissions": str(ALL_BUT_ADMIN)
                }
            if isinstance(value, Attachment):
                att_id = next(self._ids)
                self.uploads[att_id] = value
                opt["value"] = str(att_id)
                resolved.setdefault("attachments", {})[str(att_id)] = {
                    "id": str(att_id),
                    "filename": value.filename,
                    "size": len(value.data),
                    "url": f"{self.url}{API_PREFIX}/uploads/{att_id}",
                    "proxy_url": f"{self.url}{API_PREFIX}/uploads/{att_id}",
                    "content_type": value.content_type,
                }
        data = {
            "id": str(self.command_ids.get(name, 1)),
            "name": name,
            "type": 1,
            "options": opts,
            "guild_id": str(self.guild_id),
            "resolved": resolved,
        }
        rec = self._interaction(
            2, data, user_id=user_id, admin=admin, channel_id=channel_id, roles=roles
        )
        await self.dispatch("INTERACTION_CREATE", rec.payload)
        return rec

    async def autocomplete(
        self, name: str, options: dict[str, Any], focused: str, *, user_id: int = 800100
    ) -> Interaction:
        data = {
            "id": str(self.command_ids.get(name, 1)),
            "name": name,
            "type": 1,
            "options": self._options(options, focused),
            "guild_id": str(self.guild_id),
        }
        rec = self._interaction(4, data, user_id=user_id, admin=False, channel_id=None)
        await self.dispatch("INTERACTION_CREATE", rec.payload)
        return rec

    async def press_button(
        self, message_id: int, custom_id: str, *, user_id: int = 800100
    ) -> Interaction:
        msg = self.messages[message_id]
        data = {"custom_id": custom_id, "component_type": 2}
        rec = self._interaction(
            3, data, user_id=user_id, admin=False, channel_id=int(msg["channel_id"]), message=msg
        )
        await self.dispatch("INTERACTION_CREATE", rec.payload)
        return rec

    async def remove_bot(self, *, outage: bool = False) -> None:
        """GUILD_DELETE of the stand-in's guild: the bot was removed from it (kicked, banned,
        the guild deleted), or with `outage` the guild went unavailable (a Discord outage)."""
        await self.dispatch(
            "GUILD_DELETE", {"id": str(self.guild_id)} | ({"unavailable": True} if outage else {})
        )

    async def add_bot(self) -> None:
        """GUILD_CREATE of the stand-in's guild: the bot was added (back) to it, or the guild
        is available again after an outage."""
        await self.dispatch("GUILD_CREATE", self.guild())

    async def react(self, message_id: int, emoji: str, user_id: int, *, send: bool = True) -> None:
        """A user adds a reaction; with send=False only the stored state changes (as if the
        bot were offline and missed the gateway event)."""
        users = self.reactions[(message_id, emoji)]
        if user_id not in users:
            users.append(user_id)
        if send:
            await self.dispatch("MESSAGE_REACTION_ADD", self._reaction(message_id, emoji, user_id))

    async def unreact(
        self, message_id: int, emoji: str, user_id: int, *, send: bool = True
    ) -> None:
        users = self.reactions[(message_id, emoji)]
        if user_id in users:
            users.remove(user_id)
        if send:
            await self.dispatch(
                "MESSAGE_REACTION_REMOVE", self._reaction(message_id, emoji, user_id, add=False)
            )

    def post_message(
        self, channel_id: int, content: str = "", *, components: list[dict[str, Any]] | None = None
    ) -> Sent:
        """A message from the bot, as if posted before the test (e.g. one with a button)."""
        return self._new_message(
            channel_id, {"content": content, "components": components or []}, [], None
        )

    def _reaction(
        self, message_id: int, emoji: str, user_id: int, *, add: bool = True
    ) -> dict[str, Any]:
        channel = self.messages[message_id]["channel_id"] if message_id in self.messages else None
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": channel or str(self.channel_ids[0]),
            "message_id": str(message_id),
            "guild_id": str(self.guild_id),
            "emoji": emoji_payload(emoji),
            "burst": False,
            "type": 0,
        }
        if add:
            data["member"] = self.member(user_id)
            data["message_author_id"] = self.bot_user["id"]
        return data

    def post(self, channel_id: int, content: str = "") -> Sent:
        """A message the bot posted before this test looked (e.g. a meme of an earlier run)."""
        return self._new_message(channel_id, {"content": content}, [], None)

    async def delete_message(self, message_id: int) -> None:
        """A moderator deletes one message (MESSAGE_DELETE)."""
        msg = self.messages.pop(message_id)
        await self.dispatch(
            "MESSAGE_DELETE",
            {
                "id": str(message_id),
                "channel_id": msg["channel_id"],
                "guild_id": str(self.guild_id),
            },
        )

    async def bulk_delete(self, message_ids: list[int]) -> None:
        """A moderator purges messages of one channel at once (MESSAGE_DELETE_BULK)."""
        channel = self.messages[message_ids[0]]["channel_id"]
        for mid in message_ids:
            self.messages.pop(mid)
        data = {"ids": [str(m) for m in message_ids], "channel_id": channel}
        await self.dispatch("MESSAGE_DELETE_BULK", data | {"guild_id": str(self.guild_id)})

    async def clear_reactions(self, message_id: int, emoji: str | None = None) -> None:
        """A moderator removes every reaction on a message (MESSAGE_REACTION_REMOVE_ALL), or
        every reaction of one emoji (MESSAGE_REACTION_REMOVE_EMOJI)."""
        for key in [k for k in self.reactions if k[0] == message_id]:
            if emoji is None or key[1] == emoji:
                self.reactions[key].clear()
        data: dict[str, Any] = {
            "channel_id": self.messages[message_id]["channel_id"],
            "message_id": str(message_id),
            "guild_id": str(self.guild_id),
        }
        if emoji is None:
            await self.dispatch("MESSAGE_REACTION_REMOVE_ALL", data)
        else:
            await self.dispatch(
                "MESSAGE_REACTION_REMOVE_EMOJI", data | {"emoji": emoji_payload(emoji)}
            )

    def visible_commands(self, guild_id: int | None = None) -> list[str]:
        """The command names a member of the guild sees: global ones and the guild's own (a
        name twice is a command shown twice)."""
        scopes = [None] if guild_id is None else [None, guild_id]
        return sorted(c["name"] for sc in scopes for c in self.registered.get(sc, []))

    # -- waiting -----------------------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wake on every request the bot makes until `predicate()` holds."""

        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout)

    async def answered(self, rec: Interaction, timeout: float = 30.0) -> Interaction:
        await self.wait_until(lambda: rec.answered, timeout)
        return rec

    def bot_reactions(self, message_id: int) -> list[str]:
        bot = int(self.bot_user["id"])
        return [e for (m, e), users in self.reactions.items() if m == message_id and bot in users]

    # -- gateway -----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for msg in ws:
            frame = json.loads(msg.data)
            op = frame.get("op")
            if op == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:
                self.identifies += 1
                self._intents[id(ws)] = int(frame["d"].get("intents", 0))
                self.identify_intents.append(self._intents[id(ws)])
                shard = frame["d"].get("shard") or [0, 1]
                ready = {
                    "v": 10,
                    "user": self.bot_user,
                    "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                    "session_id": f"session{self.identifies}",
                    "resume_gateway_url": self.gateway_url,
                    "application": {"id": str(self.app_id), "flags": 0},
                    "shard": shard,
                    "private_channels": [],
                    "relationships": [],
                }
                await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": 1, "d": ready}))
                if (self.guild_id >> 22) % shard[1] == shard[0]:  # Discord's shard rule
                    await ws.send_str(
                        json.dumps({"op": 0, "t": "GUILD_CREATE", "s": 2, "d": self.guild()})
                    )
                self._sockets.append(ws)
                await self._notify()
            elif op == 6:
                await ws.send_str(json.dumps({"op": 9, "d": False}))
        if ws in self._sockets:
            self._sockets.remove(ws)
        return ws
