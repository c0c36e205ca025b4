"""A Discord API stand-in on loopback for the real, unmodified discord.py client.

One aiohttp server serves the REST routes the bot uses (under /api/v10) and the gateway
websocket (/gateway). Point discord.py at it with `standin.patch_discord()` (sets
`discord.http.Route.BASE` and `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`; the fixture
restores them). Tests inject INTERACTION_CREATE and MESSAGE_REACTION_ADD/REMOVE events with
`invoke`, `autocomplete`, `press_button`, `react` and `unreact`, and read back what the bot sent:
interaction callbacks, followups with their attachments, reactions. `wait_until(predicate)`
wakes on every recorded request (no sleeps).

Scope: one application, one bot user, one guild with one text channel (more channels on
request), any number of users. Messages and reactions are kept in memory; reaction routes
behave like Discord's (PUT is idempotent, GET pages with `after` and `limit`). Replies are
plain-text JSON frames whatever compression the client asks for, which discord.py accepts.
Unknown routes answer 404 and are listed in `unhandled` so a test can assert there were none.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

API_PREFIX = "/api/v10"
ADMINISTRATOR = 1 << 3
ALL_BUT_ADMIN = (1 << 41) - 1 - ADMINISTRATOR


def _json(data: object, status: int = 200) -> web.Response:
    # discord.py checks the Content-Type exactly: with "; charset=utf-8" login fails.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _iso(ts: float) -> str:
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


class DiscordStandIn:
    def __init__(self, *, guild_id: int = 900001, channel_id: int = 900002) -> None:
        self.app_id = 700001
        self.bot_user = self.user(700001, "memebot", bot=True)
        self.owner = self.user(800001, "owner")
        self.guild_id = guild_id
        self.channel_ids = [channel_id]
        self.admin_role_id = 900003
        self._ids = itertools.count(10**15)
        self._seq = itertools.count(2)
        self.messages: dict[int, dict[str, Any]] = {}
        self.sent: list[Sent] = []
        # (message id, emoji) -> user ids, in the order they reacted
        self.reactions: dict[tuple[int, str], list[int]] = defaultdict(list)
        self.interactions: dict[str, Interaction] = {}  # by token
        self.uploads: dict[int, Attachment] = {}  # attachments users sent with a command
        self.command_ids: dict[str, int] = {}
        self.command_puts: list[tuple[str, list[dict[str, Any]]]] = []  # (path, payload)
        self.unhandled: list[str] = []
        self.requests: list[str] = []
        self.identifies = 0
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

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway"

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

    # -- payload builders --------------------------------------------------------------------

    @staticmethod
    def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
        }

    def member(self, user_id: int, *, admin: bool = False) -> dict[str, Any]:
        return {
            "user": self.user(user_id, f"user{user_id}"),
            "roles": [str(self.admin_role_id)] if admin else [],
            "joined_at": _iso(0),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "permissions": str(ADMINISTRATOR | ALL_BUT_ADMIN if admin else ALL_BUT_ADMIN),
        }

    def channel(self, channel_id: int) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": f"memes-{channel_id}",
            "position": self.channel_ids.index(channel_id),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def guild(self) -> dict[str, Any]:
        role = {
            "id": str(self.guild_id),
            "name": "@everyone",
            "permissions": str(ALL_BUT_ADMIN),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        admin = role | {"id": str(self.admin_role_id), "name": "admins", "position": 1}
        admin["permissions"] = str(ADMINISTRATOR | ALL_BUT_ADMIN)
        return {
            "id": str(self.guild_id),
            "name": "Stand-in Guild",
            "icon": None,
            "owner_id": self.owner["id"],
            "roles": [role, admin],
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": [self.channel(c) for c in self.channel_ids],
            "threads": [],
            "members": [self.member(int(self.bot_user["id"]))],
            "member_count": 2,
            "large": False,
            "unavailable": False,
            "joined_at": _iso(0),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
        }

    def _message(self, sent: Sent) -> dict[str, Any]:
        return {
            "id": str(sent.id),
            "channel_id": str(sent.channel_id),
            "guild_id": str(self.guild_id),
            "author": self.bot_user,
            "content": sent.content,
            "timestamp": _iso(time.time()),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": str(sent.id + i + 1),
                    "filename": a.filename,
                    "size": len(a.data),
                    "url": f"{self.url}/attachments/{sent.id}/{a.filename}",
                    "proxy_url": f"{self.url}/attachments/{sent.id}/{a.filename}",
                    "content_type": a.content_type,
                    "description": a.description,
                }
                for i, a in enumerate(sent.attachments)
            ],
            "embeds": [],
            "pinned": False,
            "type": 0 if sent.interaction_token is None else 20,
            "flags": sent.flags,
            "components": sent.components,
            "webhook_id": str(self.app_id) if sent.interaction_token else None,
            "application_id": str(self.app_id),
        }

    # -- injecting events --------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        frame = json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data})
        if not self._sockets:
            raise RuntimeError("no bot is connected to the stand-in gateway")
        for ws in list(self._sockets):
            await ws.send_str(frame)

    def _interaction(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user_id: int,
        admin: bool,
        channel_id: int | None,
        message: dict[str, Any] | None = None,
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
            "member": self.member(user_id, admin=admin),
            "token": token,
            "version": 1,
            "app_permissions": str(ALL_BUT_ADMIN),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = message
        rec = Interaction(iid, token, itype, payload)
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
    ) -> Interaction:
        """Send a slash command (type 2). An `Attachment` value becomes an attachment option,
        served by this server so the bot can download it."""
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
        rec = self._interaction(2, data, user_id=user_id, admin=admin, channel_id=channel_id)
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

    def _reaction(
        self, message_id: int, emoji: str, user_id: int, *, add: bool = True
    ) -> dict[str, Any]:
        channel = self.messages[message_id]["channel_id"] if message_id in self.messages else None
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": channel or str(self.channel_ids[0]),
            "message_id": str(message_id),
            "guild_id": str(self.guild_id),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if add:
            data["member"] = self.member(user_id)
            data["message_author_id"] = self.bot_user["id"]
        return data

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

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

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
                if self.guild_id % shard[1] == shard[0] or shard[1] == 1:
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

    # -- REST --------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], list[Attachment]]:
        if request.content_type.startswith("multipart/"):
            payload: dict[str, Any] = {}
            files: dict[int, tuple[str, str, bytes]] = {}
            reader = await request.multipart()
            async for part in reader:
                name = part.name or ""  # type: ignore[union-attr]
                raw = await part.read()  # type: ignore[union-attr]
                if name == "payload_json":
                    payload = json.loads(raw)
                elif name.startswith("files["):
                    idx = int(name[6:-1])
                    files[idx] = (
                        part.filename or "",  # type: ignore[union-attr]
                        part.headers.get("Content-Type", ""),  # type: ignore[union-attr]
                        bytes(raw),
                    )
            meta = {int(a["id"]): a for a in payload.get("attachments", [])}
            atts = [
                Attachment(fn, ct, data, meta.get(i, {}).get("description"))
                for i, (fn, ct, data) in sorted(files.items())
            ]
            return payload, atts
        if request.can_read_body:
            return await request.json(), []
        return {}, []

    def _new_message(
        self, channel_id: int, body: dict[str, Any], atts: list[Attachment], token: str | None
    ) -> Sent:
        sent = Sent(
            id=next(self._ids),
            channel_id=channel_id,
            content=body.get("content") or "",
            attachments=atts,
            components=body.get("components") or [],
            flags=int(body.get("flags") or 0),
            interaction_token=token,
        )
        self.sent.append(sent)
        self.messages[sent.id] = self._message(sent)
        return sent

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        self.requests.append(f"{request.method} {path}")
        try:
            return await self._route(request, path, [unquote(p) for p in path.split("/")[1:]])
        finally:
            await self._notify()

    async def _route(self, request: web.Request, path: str, p: list[str]) -> web.StreamResponse:
        m = request.method
        if m == "GET" and path == "/users/@me":
            return _json(self.bot_user)
        if m == "GET" and path == "/oauth2/applications/@me":
            return _json(
                {
                    "id": str(self.app_id),
                    "name": "memebot",
                    "description": "",
                    "icon": None,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": self.owner,
                    "verify_key": "0" * 64,
                    "flags": 0,
                    "team": None,
                    "interactions_endpoint_url": None,
                }
            )
        if m == "GET" and path in ("/gateway", "/gateway/bot"):
            return _json(
                {
                    "url": self.gateway_url,
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 1000,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if p[0] == "applications" and p[-1] == "commands" and m == "PUT":
            cmds = await request.json()
            self.command_puts.append((path, cmds))
            out = []
            for c in cmds:
                cid = self.command_ids.setdefault(c["name"], next(self._ids))
                out.append(
                    c
                    | {
                        "id": str(cid),
                        "application_id": str(self.app_id),
                        "version": "1",
                        "type": c.get("type", 1),
                    }
                )
            return _json(out)
        if p[0] == "applications" and p[-1] == "commands" and m == "GET":
            return _json([])
        if p[0] == "interactions" and p[-1] == "callback" and m == "POST":
            rec = self.interactions[p[2]]
            body, atts = await self._body(request)
            rec.callbacks.append(body)
            resource: dict[str, Any] = {"type": body["type"]}
            if body["type"] == 5:  # deferred: Discord shows a "thinking" original message
                data = {"flags": ((body.get("data") or {}).get("flags", 0)) | 128}
                rec.original = self._new_message(
                    int(rec.payload["channel_id"]), data, [], rec.token
                )
            elif body["type"] in (4, 7):
                data = body.get("data") or {}
                sent = self._new_message(int(rec.payload["channel_id"]), data, atts, rec.token)
                rec.original = sent
                resource["message"] = self.messages[sent.id]
            return _json(
                {
                    "interaction": {
                        "id": str(rec.id),
                        "type": rec.type,
                        "response_message_id": str(rec.original.id) if rec.original else None,
                        "response_message_loading": body["type"] == 5,
                        "response_message_ephemeral": bool(
                            (body.get("data") or {}).get("flags", 0) & 64
                        ),
                    },
                    "resource": resource,
                }
            )
        if p[0] == "webhooks" and len(p) >= 3:
            return await self._webhook(request, p)
        if p[0] == "channels":
            return await self._channel(request, p)
        if m == "GET" and p[0] == "uploads":
            att = self.uploads[int(p[1])]
            return web.Response(body=att.data, content_type=att.content_type or None)
        self.unhandled.append(f"{m} {path}")
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    async def _webhook(self, request: web.Request, p: list[str]) -> web.StreamResponse:
        m, token = request.method, p[2]
        rec = self.interactions.get(token)
        if rec is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        channel_id = int(rec.payload["channel_id"])
        if len(p) == 3 and m == "POST":
            body, atts = await self._body(request)
            sent = self._new_message(channel_id, body, atts, token)
            rec.followups.append(sent)
            return _json(self.messages[sent.id])
        if len(p) == 5 and p[3] == "messages":
            target = rec.original if p[4] == "@original" else None
            if p[4] != "@original":
                target = next((s for s in rec.followups if s.id == int(p[4])), None)
            if m == "PATCH":
                body, atts = await self._body(request)
                if target is None:  # editing the deferred "thinking" message
                    target = self._new_message(channel_id, body, atts, token)
                    rec.original = target
                else:
                    if "content" in body:
                        target.content = body["content"] or ""
                    if "components" in body:
                        target.components = body["components"] or []
                    if atts:
                        target.attachments = atts
                    self.messages[target.id] = self._message(target)
                return _json(self.messages[target.id])
            if target is None:
                return _json({"message": "Unknown Message", "code": 10008}, status=404)
            if m == "GET":
                return _json(self.messages[target.id])
            if m == "DELETE":
                self.messages.pop(target.id, None)
                if target is rec.original:
                    rec.original = None
                    rec.deleted_original = True
                return web.Response(status=204)
        self.unhandled.append(f"{m} /{'/'.join(p)}")
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    async def _channel(self, request: web.Request, p: list[str]) -> web.StreamResponse:
        m = request.method
        if len(p) == 2 and m == "GET":
            return _json(self.channel(int(p[1])))
        if len(p) >= 4 and p[2] == "messages":
            msg_id = int(p[3])
            if msg_id not in self.messages:
                return _json({"message": "Unknown Message", "code": 10008}, status=404)
            if len(p) == 4 and m == "GET":
                return _json(self._with_reactions(msg_id))
            if len(p) >= 6 and p[4] == "reactions":
                emoji = p[5]
                users = self.reactions[(msg_id, emoji)]
                if len(p) == 7 and m == "PUT" and p[6] == "@me":
                    bot = int(self.bot_user["id"])
                    if bot not in users:
                        users.append(bot)
                    return web.Response(status=204)
                if len(p) == 7 and m == "DELETE":
                    uid = int(self.bot_user["id"]) if p[6] == "@me" else int(p[6])
                    if uid in users:
                        users.remove(uid)
                    return web.Response(status=204)
                if len(p) == 6 and m == "GET":
                    after = int(request.query.get("after", "0"))
                    limit = int(request.query.get("limit", "25"))
                    page = sorted(u for u in users if u > after)[:limit]
                    return _json([self.user(u, f"user{u}") for u in page])
        if len(p) == 3 and p[2] == "messages" and m == "POST":
            body, atts = await self._body(request)
            sent = self._new_message(int(p[1]), body, atts, None)
            return _json(self.messages[sent.id])
        self.unhandled.append(f"{m} /{'/'.join(p)}")
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _with_reactions(self, msg_id: int) -> dict[str, Any]:
        bot = int(self.bot_user["id"])
        reactions = [
            {
                "emoji": {"id": None, "name": e},
                "count": len(users),
                "me": bot in users,
                "count_details": {"burst": 0, "normal": len(users)},
                "burst_colors": [],
                "me_burst": False,
            }
            for (m, e), users in self.reactions.items()
            if m == msg_id and users
        ]
        return self.messages[msg_id] | {"reactions": reactions}
