"""The REST routes the bot calls, under /api/v10.

Which permissions Discord checks when the bot acts in a channel (`forbid_sends`), whatever
the interaction's `app_permissions` claimed:
- a channel message (POST /channels/{id}/messages) needs Send Messages, and Attach Files when
  it carries files; editing the bot's own message there needs Send Messages;
- an interaction's answer (the callback, followups, edits of its messages) is a webhook
  message and needs no Send Messages (nor View Channel); only files need the bot's Attach
  Files (Discord computes interaction responses' Attach Files, Embed Links, Mention
  Everyone and Use External Emojis from the bot's permissions, change log of 2022-06-29);
- a reaction needs Read Message History, and Add Reactions when nobody has reacted to the
  message with that emoji yet.
A refusal is 403 with Discord's body {"message": "Missing Permissions", "code": 50013}.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from harness.discord_standin.payloads import Payloads
from harness.discord_standin.ratelimits import RateLimits
from harness.discord_standin.records import (
    ADD_REACTIONS,
    ATTACH_FILES,
    INTERACTION_DEADLINE,
    MISSING_PERMISSIONS,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    Attachment,
    Interaction,
    Sent,
    json_response,
)


class Rest(Payloads):
    _ids: Iterator[int]
    late_callbacks: list[Interaction]
    forbid_reads: set[int]
    forbid_sends: dict[int, int]
    rate_limits: RateLimits | None
    forbid_application: bool
    on_followup: Callable[[Sent], Awaitable[None]] | None
    messages: dict[int, dict[str, Any]]
    sent: list[Sent]
    reactions: dict[tuple[int, str], list[int]]
    interactions: dict[str, Interaction]
    command_puts: list[tuple[str, list[dict[str, Any]]]]
    registered: dict[int | None, list[dict[str, Any]]]
    forbid_command_sync: set[int]
    unhandled: list[str]
    requests: list[str]
    uploads: dict[int, Attachment]
    command_ids: dict[str, int]
    _changed: asyncio.Condition
    route_delays: dict[str, float]
    token_lifetime: float
    attachment_limit: int

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _refused(self, channel_id: int, need: int) -> web.Response | None:
        """Discord's 403 when the bot lacks any of `need` in the channel, else None."""
        if self.forbid_sends.get(channel_id, 0) & need:
            return json_response(MISSING_PERMISSIONS, status=403)
        return None

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
            allowed_mentions=body.get("allowed_mentions"),
        )
        self.sent.append(sent)
        self.messages[sent.id] = self._message(sent)
        return sent

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        self.requests.append(f"{request.method} {path}")
        parts = [unquote(p) for p in path.split("/")[1:]]
        try:
            delay = self.route_delays.get(f"{request.method} {path}")
            if delay:  # a slow Discord route (e.g. the application info)
                await asyncio.sleep(delay)
            if self.rate_limits is None:
                return await self._route(request, path, parts)
            verdict = self.rate_limits.take(request.method, parts)
            if verdict.retry_after is not None:
                response: web.StreamResponse = json_response(verdict.body, status=429)
            else:
                response = await self._route(request, path, parts)
            response.headers.update(verdict.headers)
            return response
        finally:
            await self._notify()

    async def _route(self, request: web.Request, path: str, p: list[str]) -> web.StreamResponse:
        m = request.method
        if m == "GET" and path == "/users/@me":
            return json_response(self.bot_user)
        if m == "GET" and path == "/oauth2/applications/@me":  # what Bot.is_owner reads
            if self.forbid_application:
                return json_response({"message": "Missing Access", "code": 50001}, 403)
            return json_response(self.application())
        if m == "GET" and path in ("/gateway", "/gateway/bot"):
            return json_response(
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
        if p[0] == "applications" and p[-1] == "commands":
            scope = int(p[3]) if len(p) == 5 and p[2] == "guilds" else None  # None: global
            if scope is not None and scope in self.forbid_command_sync:
                # A guild that invited the bot without the applications.commands scope.
                return json_response({"message": "Missing Access", "code": 50001}, status=403)
            if m == "GET":
                return json_response(self.registered.get(scope, []))
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
            self.registered[scope] = out  # a PUT replaces that scope's whole set
            return json_response(out)
        if p[0] == "interactions" and p[-1] == "callback" and m == "POST":
            rec = self.interactions[p[2]]
            body, atts = await self._body(request)
            refused = self._refused(int(rec.payload["channel_id"]), ATTACH_FILES if atts else 0)
            if refused is not None:
                return refused
            if rec.responded_at is None:
                rec.responded_at = time.monotonic()
            if not rec.callbacks and time.monotonic() - rec.dispatched_at > INTERACTION_DEADLINE:
                self.late_callbacks.append(rec)  # Discord has given up on this interaction
                return json_response({"message": "Unknown interaction", "code": 10062}, 404)
            rec.callbacks.append(body)
            resource: dict[str, Any] = {"type": body["type"]}
            if body["type"] == 5:  # deferred: Discord shows a "thinking" original message
                data = {"flags": ((body.get("data") or {}).get("flags", 0)) | 128}
                rec.original = self._new_message(
                    int(rec.payload["channel_id"]), data, [], rec.token
                )
            elif body["type"] == 6 and "message" in rec.payload:
                # A button's deferred update: @original is the message the button is on.
                mid = int(rec.payload["message"]["id"])
                rec.original = next((x for x in self.sent if x.id == mid), None)
            elif body["type"] in (4, 7):
                data = body.get("data") or {}
                sent = self._new_message(int(rec.payload["channel_id"]), data, atts, rec.token)
                rec.original = sent
                resource["message"] = self.messages[sent.id]
            return json_response(
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
        return json_response({"message": "404: Not Found", "code": 0}, status=404)

    async def _webhook(self, request: web.Request, p: list[str]) -> web.StreamResponse:
        m, token = request.method, p[2]
        rec = self.interactions.get(token)
        if rec is None:
            return json_response({"message": "Unknown Webhook", "code": 10015}, status=404)
        channel_id = int(rec.payload["channel_id"])
        if time.monotonic() - rec.dispatched_at > self.token_lifetime:
            return json_response({"message": "Invalid Webhook Token", "code": 50027}, 401)
        if len(p) == 3 and m == "POST":
            body, atts = await self._body(request)
            refused = self._refused(channel_id, ATTACH_FILES if atts else 0)
            if refused is not None:  # a followup needs no Send Messages; its files do
                return refused
            if sum(len(a.data) for a in atts) > self.attachment_limit:
                return json_response(
                    {"message": "Request entity too large", "code": 40005}, status=413
                )
            if rec.original is not None and rec.original.loading:
                # Like Discord: the first followup after a defer replaces the "thinking"
                # message (same id, the defer's ephemeral flag; the followup's is ignored).
                sent = rec.original
                sent.content = body.get("content") or ""
                sent.attachments = atts
                sent.components = body.get("components") or []
                sent.allowed_mentions = body.get("allowed_mentions")
                sent.flags &= ~128
                self.messages[sent.id] = self._message(sent)
            else:
                sent = self._new_message(channel_id, body, atts, token)
            rec.followups.append(sent)
            if self.on_followup is not None:  # a test acts before the bot hears back
                await self.on_followup(sent)
            return json_response(self.messages[sent.id])
        if len(p) == 5 and p[3] == "messages":
            target = rec.original if p[4] == "@original" else None
            if p[4] != "@original":
                target = next((s for s in rec.followups if s.id == int(p[4])), None)
            if m == "PATCH":
                body, atts = await self._body(request)
                refused = self._refused(channel_id, ATTACH_FILES if atts else 0)
                if refused is not None:
                    return refused
                if target is None:  # editing the deferred "thinking" message
                    target = self._new_message(channel_id, body, atts, token)
                    rec.original = target
                elif target.id not in self.messages:  # deleted (or an ephemeral dismissed)
                    return json_response({"message": "Unknown Message", "code": 10008}, 404)
                else:
                    if "content" in body:
                        target.content = body["content"] or ""
                    if "components" in body:
                        target.components = body["components"] or []
                    if atts:
                        target.attachments = atts
                    self.messages[target.id] = self._message(target)
                rec.edited = True
                return json_response(self.messages[target.id])
            if target is None:
                return json_response({"message": "Unknown Message", "code": 10008}, status=404)
            if m == "GET":
                return json_response(self.messages[target.id])
            if m == "DELETE":
                self.messages.pop(target.id, None)
                if target is rec.original:
                    rec.original = None
                    rec.deleted_original = True
                return web.Response(status=204)
        self.unhandled.append(f"{m} /{'/'.join(p)}")
        return json_response({"message": "404: Not Found", "code": 0}, status=404)

    async def _channel(self, request: web.Request, p: list[str]) -> web.StreamResponse:
        m = request.method
        if len(p) == 2 and m == "GET":
            return json_response(self.channel(int(p[1])))
        if int(p[1]) not in self.channel_ids:  # not a channel of the guild (or deleted)
            return json_response({"message": "Unknown Channel", "code": 10003}, status=404)
        if m == "GET" and len(p) >= 3 and int(p[1]) in self.forbid_reads:
            return json_response({"message": "Missing Access", "code": 50001}, status=403)
        if len(p) >= 4 and p[2] == "messages":
            msg_id = int(p[3])
            if msg_id not in self.messages:
                return json_response({"message": "Unknown Message", "code": 10008}, status=404)
            if len(p) == 4 and m == "GET":
                return json_response(self._with_reactions(msg_id))
            if len(p) == 4 and m == "DELETE":  # the bot deleting its own message: no permission
                self.messages.pop(msg_id)
                return web.Response(status=204)
            if len(p) == 4 and m == "PATCH":  # the bot editing a message it posted
                body, _atts = await self._body(request)
                refused = self._refused(int(p[1]), SEND_MESSAGES)
                if refused is not None:
                    return refused
                sent = next(x for x in self.sent if x.id == msg_id)
                if "content" in body:
                    sent.content = body["content"] or ""
                self.messages[msg_id] = self._message(sent)
                return json_response(self.messages[msg_id])
            if len(p) >= 6 and p[4] == "reactions":
                emoji = p[5]
                users = self.reactions[(msg_id, emoji)]
                if len(p) == 7 and m == "PUT" and p[6] == "@me":
                    # Add Reactions only for an emoji nobody has put on the message yet.
                    need = READ_MESSAGE_HISTORY | (0 if users else ADD_REACTIONS)
                    refused = self._refused(int(p[1]), need)
                    if refused is not None:
                        return refused
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
                    return json_response([self.user(u, f"user{u}") for u in page])
        if len(p) == 3 and p[2] == "messages" and m == "POST":
            body, atts = await self._body(request)
            refused = self._refused(int(p[1]), SEND_MESSAGES | (ATTACH_FILES if atts else 0))
            if refused is not None:
                return refused
            sent = self._new_message(int(p[1]), body, atts, None)
            return json_response(self.messages[sent.id])
        self.unhandled.append(f"{m} /{'/'.join(p)}")
        return json_response({"message": "404: Not Found", "code": 0}, status=404)

    def _with_reactions(self, msg_id: int) -> dict[str, Any]:
        bot = int(self.bot_user["id"])
        reactions = [
            {
                "emoji": {"id": e.partition(":")[2] or None, "name": e.partition(":")[0]},
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
