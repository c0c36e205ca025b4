"""The one HTTP client of the engine's API (docs/ENGINE.md): the bot, the retrain worker's
promotion and rollback, and `memebot up` speak to engines through it (the engine and
feedback-loop benchmarks send their load as plain HTTP).

aiohttp and the API schema only (no ML code), so the bot imports it without the engine's
dependencies. Every failure of a meme request becomes an `EngineError` subclass whose message
can be shown to a Discord user as is: the engine is down, at capacity, too slow, the template is
unknown, or the request is bad. A reload answers with a `ReloadResult` per replica instead, so a
promotion can tell a refused candidate from an engine that is down.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from engine.schema import (
    MEMES_PATH,
    READY_PATH,
    RELOAD_PATH,
    TEMPLATES_PATH,
    UPLOAD_PATH,
    BadRequest,
    MemeOptions,
    MemeRequest,
    MemeResponse,
    ReadyResponse,
    ReloadRequest,
    TemplateInfo,
    TemplatesResponse,
    UploadOptions,
    bad_request,
)
from memebot.errors import MemebotError


class EngineError(MemebotError):
    """The engine could not make the meme; the message is meant for the user."""


class EngineUnavailable(EngineError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "The meme engine is not reachable right now; try again in a minute."
            + (f" ({detail})" if detail else "")
        )
        self.detail = detail  # for logs and shells: the bot shows users the sentence alone


class EngineOverloaded(EngineError):
    def __init__(self, retry_after: float | None) -> None:
        wait = f" in {retry_after:g} s" if retry_after else " shortly"
        super().__init__(f"The meme engine is busy; try again{wait}.")
        self.retry_after = retry_after


class EngineTimeout(EngineError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"The meme engine took longer than {seconds:g} s; try again.")


class UnknownTemplate(EngineError):
    """404 on the `template` field: the message lists the closest names."""


class EngineBadRequest(EngineError):
    """400/413/415/422 (or the same schema refusing the request before it is sent): the message
    names the field that is wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @classmethod
    def refused(cls, e: BadRequest) -> EngineBadRequest:
        return cls(f"The meme engine refused that: {e}", e.field)


Opts = TypeVar("Opts", bound=MemeOptions)


def checked(model: type[Opts], /, **fields: Any) -> Opts:
    """A request (or its options) checked by the engine's own schema before it is sent: a
    mistake is the same EngineBadRequest (naming the field) as when the engine refuses it."""
    try:
        return model.model_validate(fields)
    except BadRequest as e:
        raise EngineBadRequest.refused(e) from None
    except ValidationError as e:
        raise EngineBadRequest.refused(bad_request(e)) from None


@dataclass(frozen=True)
class Meme:
    """One caption and its rendered image, as the engine answered."""

    template: TemplateInfo
    boxes: list[str]
    image: bytes
    image_format: str
    alt_text: str
    model_version: str
    options: dict[str, Any]  # the options as used, defaults filled in (seed included)
    timings_ms: dict[str, float]

    @property
    def seed(self) -> int | None:
        seed = self.options.get("seed")
        return int(seed) if seed is not None else None

    @property
    def filename(self) -> str:
        ext = "jpg" if self.image_format == "jpeg" else self.image_format
        return f"{self.template.slug}.{ext}"

    @classmethod
    def from_response(cls, r: MemeResponse) -> Meme:
        if r.image is None:
            raise EngineError("The meme engine answered without an image.")
        return cls(
            template=r.template,
            boxes=list(r.boxes),
            image=base64.b64decode(r.image.data_base64),
            image_format=r.image.format,
            alt_text=r.image.alt_text,
            model_version=r.model_version,
            options=r.options.model_dump(mode="json"),
            timings_ms=dict(r.timings_ms),
        )


RELOAD_TIMEOUT_S = 120.0  # loading a model takes seconds; a busy engine finishes requests first


@dataclass(frozen=True)
class ReloadResult:
    url: str
    status: Literal["ok", "refused", "unreachable", "error"]  # refused: 422, a bad artifact
    detail: str  # the version now served, or what went wrong


class EngineClient:
    """Talks to one engine. The caller owns `session` (the bot creates and closes it)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self.base_url + path
        try:
            async with self.session.request(
                method,
                url,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                **kwargs,
            ) as resp:
                text = await resp.text()
                if resp.status == 200:
                    body = json.loads(text)
                    if not isinstance(body, dict):
                        raise EngineError("The meme engine sent an answer the bot cannot read.")
                    return body
                raise _error_for(resp.status, text, resp.headers.get("Retry-After"))
        except TimeoutError as e:
            raise EngineTimeout(self.timeout) from e
        except aiohttp.ClientConnectionError as e:
            raise EngineUnavailable(type(e).__name__) from e
        except json.JSONDecodeError as e:
            raise EngineError("The meme engine sent an answer the bot cannot read.") from e

    async def ready(self) -> ReadyResponse:
        return _parse(ReadyResponse, await self._request("GET", READY_PATH))

    async def templates(self, query: str = "", limit: int = 25) -> list[TemplateInfo]:
        return (await self.templates_page(query, limit)).templates

    async def templates_page(
        self, query: str = "", limit: int = 25, offset: int = 0
    ) -> TemplatesResponse:
        """One page of the matches (`total`: how many there are, for paging)."""
        params = {"q": query, "limit": str(max(1, min(limit, 25))), "offset": str(max(0, offset))}
        return _parse(TemplatesResponse, await self._request("GET", TEMPLATES_PATH, params=params))

    async def meme(
        self, template: str, options: MemeOptions | None = None, *, server: int | None = None
    ) -> Meme:
        """A meme of `template`; `server`: the Discord guild it is for (its taste picks)."""
        fields = _with_server(options.to_body() if options is not None else {}, server)
        req = checked(MemeRequest, template=template, **fields)
        body = await self._request("POST", MEMES_PATH, json=req.to_body())
        return Meme.from_response(_parse(MemeResponse, body))

    async def caption_upload(
        self,
        image: bytes,
        *,
        filename: str,
        content_type: str,
        options: MemeOptions | None = None,
        server: int | None = None,
    ) -> Meme:
        """Caption an uploaded image; boxes left unset are the upload's default (top, bottom).
        `server`: the Discord guild it is for (its taste picks)."""
        fields = _with_server(options.to_body() if options is not None else {}, server)
        opts = checked(UploadOptions, **fields)
        form = aiohttp.FormData()
        form.add_field("image", image, filename=filename, content_type=content_type)
        form.add_field("options", json.dumps(opts.to_body()), content_type="application/json")
        body = await self._request("POST", UPLOAD_PATH, data=form)
        return Meme.from_response(_parse(MemeResponse, body))

    async def reload(self, path: Path) -> ReloadResult:
        """`POST /v1/model/reload`: the engine loads the artifact at `path` (on its machine)."""
        body = ReloadRequest(path=str(path)).model_dump(mode="json")
        try:
            async with self.session.post(
                self.base_url + RELOAD_PATH,
                json=body,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            return ReloadResult(self.base_url, "unreachable", f"{type(e).__name__}: {e}")
        except (aiohttp.ClientError, ValueError) as e:
            return ReloadResult(self.base_url, "error", f"{type(e).__name__}: {e}")
        if resp.status == 200 and isinstance(answer, dict):
            return ReloadResult(self.base_url, "ok", str(answer.get("model_version")))
        message = answer.get("error", answer) if isinstance(answer, dict) else answer
        if resp.status == 422:
            return ReloadResult(self.base_url, "refused", str(message))
        return ReloadResult(self.base_url, "error", f"HTTP {resp.status}: {message}")


async def reload_all(
    urls: tuple[str, ...], path: Path, *, token: str | None = None
) -> list[ReloadResult]:
    """Every replica loads `path`, in parallel, each answering for itself."""
    async with aiohttp.ClientSession() as session:
        clients = [EngineClient(session, u, token=token, timeout=RELOAD_TIMEOUT_S) for u in urls]
        return list(await asyncio.gather(*(c.reload(path) for c in clients)))


M = TypeVar("M", bound=BaseModel)


def _with_server(fields: dict[str, Any], server: int | None) -> dict[str, Any]:
    """`fields` naming `server` (the API takes a guild id as a string of digits)."""
    return fields if server is None else {**fields, "server": str(server)}


def _parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as e:
        raise EngineError("The meme engine sent an answer the bot cannot read.") from e


def _error_for(status: int, text: str, retry_after: str | None) -> EngineError:
    try:
        body = json.loads(text)
        message = str(body.get("error") or text)
        field = body.get("field")
    except (json.JSONDecodeError, AttributeError):
        message, field = text[:200], None
    if status == 503:
        try:
            wait = float(retry_after) if retry_after else None
        except ValueError:
            wait = None
        return EngineOverloaded(wait)
    if status == 504:
        return EngineError(f"The meme engine took too long ({message}); try again.")
    if status == 404 and field == "template":
        problem = message.removeprefix("template: ")
        return UnknownTemplate(problem[:1].upper() + problem[1:])
    if status == 401:
        return EngineUnavailable("the bot's MEMEBOT_ENGINE_TOKEN is missing or wrong")
    if 400 <= status < 500:
        return EngineBadRequest(f"The meme engine refused that: {message}", field)
    return EngineUnavailable(f"HTTP {status}")
