"""The engine's HTTP API (aiohttp): the models of engine/schema/ over HTTP, /openapi.json
generated from them. Binds 127.0.0.1 by default; an optional bearer token guards /v1 and
/metrics. Every client mistake is a 4xx naming the field (or a quiet close when the client is
gone); only the unexpected is logged with a traceback and answered 500."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import BodyPartReader, ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ValidationError

from engine.decoding.jobs import Sampled
from engine.openapi import openapi_document
from engine.scheduler import QueueFull
from engine.schema import (
    HEADER_ALT_TEXT,
    HEADER_BOXES,
    HEADER_MODEL,
    HEALTH_PATH,
    MEMES_PATH,
    METRICS_PATH,
    OPEN_PATHS,
    OPENAPI_PATH,
    READY_PATH,
    RELOAD_PATH,
    TEMPLATES_PATH,
    UPLOAD_PATH,
    BadRequest,
    CaptionResult,
    ErrorBody,
    HealthResponse,
    ImagePayload,
    MemeOptions,
    MemeRequest,
    MemeResponse,
    ReadyResponse,
    ReloadRequest,
    ReloadResponse,
    TemplateQuery,
    TemplatesResponse,
    UploadOptions,
    bad_request,
    parse_json,
)
from engine.service import MemeResult, MemeService, template_info
from memebot.choices import FORMATS, ImageFormat
from memebot.errors import ArtifactError, MemebotError, TemplateNotFound
from memebot.logs import get_logger

log = get_logger(__name__)
SERVICE: web.AppKey[MemeService] = web.AppKey("service", MemeService)
CLIENT_GONE = 499  # metrics label for a client that left mid-request (nginx's convention)
JSON_BODY_LIMIT = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "memebot_requests_total", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "memebot_request_seconds",
            "Request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
        )
        self.batch = Histogram(
            "memebot_batch_rows",
            "Caption rows per batched model call",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.queue = Gauge(
            "memebot_queue_depth", "Requests waiting to join the batch", registry=self.registry
        )
        self.in_flight = Gauge(
            "memebot_in_flight", "Requests being decoded", registry=self.registry
        )
        self.model = Gauge(
            "memebot_model_info", "Loaded model", ["version"], registry=self.registry
        )


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


def _error(status: int, message: str, *, field: str | None = None, **extra: str) -> web.Response:
    body = ErrorBody(error=message, field=field, **extra)
    return _json(body, status)


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(exclude_none=isinstance(model, ErrorBody)),
        status=status,
        content_type="application/json",
    )


def build_app(service: MemeService) -> web.Application:
    settings = service.settings
    token = settings.engine_secret.encode() if settings.engine_secret else None
    metrics = Metrics()

    def authorised(request: web.Request) -> bool:
        if not token or request.path in OPEN_PATHS:
            return True
        # Bytes that are not UTF-8 arrive as surrogates: replaced, they compare (and fail)
        # instead of raising an encoding error.
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        return given.startswith(b"Bearer ") and hmac.compare_digest(given[7:], token)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource else "unmatched"
        started = time.perf_counter()
        resp: web.StreamResponse | None = None
        try:
            if not authorised(request):
                resp = _error(401, "missing or wrong bearer token")
                resp.headers["WWW-Authenticate"] = "Bearer"
            else:
                resp = await handler(request)
        except BadRequest as e:
            resp = _error(e.status, str(e), field=e.field)
            if e.status == 408:
                # The rest of the body is not coming: answer, then hang up at once (aiohttp
                # would otherwise linger 10 s more reading it).
                resp.force_close()
                await resp.prepare(request)
                await resp.write_eof()
                request.protocol.force_close()
        except TemplateNotFound as e:
            resp = _error(404, f"template: {e}", field="template")
        except QueueFull:
            resp = _error(503, "engine is at capacity, retry shortly")
            resp.headers["Retry-After"] = "1"
        except TimeoutError:
            resp = _error(504, f"generation took longer than {settings.request_timeout:g} s")
        except ArtifactError as e:
            resp = _error(422, str(e))
        except MemebotError as e:
            resp = _error(400, str(e))
        except web.HTTPException as e:
            resp = _error(e.status, e.reason)
            if "Allow" in e.headers:  # 405: the methods the path has (RFC 9110)
                resp.headers["Allow"] = e.headers["Allow"]
        except (ConnectionError, ClientPayloadError, asyncio.IncompleteReadError) as e:
            # The client left mid-request (mid-body, most often): one line, no traceback, and
            # nobody to answer; the connection is closed with nothing sent.
            log.info("client left during %s %s (%s)", request.method, request.path, e or "")
            request.protocol.force_close()
            resp = web.Response(status=CLIENT_GONE)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            resp = _error(500, "internal error (logged)")
        finally:
            status = CLIENT_GONE if resp is None else resp.status  # None: cancelled
            metrics.requests.labels(route, str(status)).inc()
            metrics.latency.labels(route).observe(time.perf_counter() - started)
        return resp

    service.scheduler.on_step = metrics.batch.observe
    app = web.Application(middlewares=[guard], client_max_size=JSON_BODY_LIMIT)
    app[SERVICE] = service
    app[METRICS] = metrics
    app.router.add_post(MEMES_PATH, memes)
    app.router.add_post(UPLOAD_PATH, upload)
    app.router.add_get(TEMPLATES_PATH, templates)
    app.router.add_post(RELOAD_PATH, reload)
    app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_get(READY_PATH, readyz)
    app.router.add_get(METRICS_PATH, metrics_handler)
    app.router.add_get(OPENAPI_PATH, openapi)

    async def on_startup(app: web.Application) -> None:
        await app[SERVICE].start()

    async def on_cleanup(app: web.Application) -> None:
        await app[SERVICE].stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def _within_body_timeout(request: web.Request, read: Awaitable[T]) -> T:
    """`read` (of the request body) within MEMEBOT_BODY_TIMEOUT: a client that sent headers
    and then stalls gets a 408 and the connection closed, not a socket held forever."""
    timeout = request.app[SERVICE].settings.body_timeout
    try:
        async with asyncio.timeout(timeout):
            return await read
    except TimeoutError:
        raise BadRequest(
            "body", f"not received within {timeout:g} s (MEMEBOT_BODY_TIMEOUT)", status=408
        ) from None


async def _json_body(request: web.Request, model: type[M]) -> M:
    """The body as `model`: read within the body timeout, decoded as UTF-8 whatever the
    Content-Type's charset says (JSON is UTF-8), refused with the field named."""
    try:
        raw = await _within_body_timeout(request, request.read())
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest("body", f"larger than {JSON_BODY_LIMIT:,} bytes", status=413) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body", "not UTF-8 (JSON bodies are UTF-8)") from None
    return parse_json(model, text)


def _negotiate(request: web.Request, opts: MemeOptions) -> tuple[bool, ImageFormat | None]:
    """Whether to answer with the image bytes, and in which format. Body fields win; the
    Accept header fills in what the body leaves out: `Accept: image/png` alone means
    response=image, format=png. A body format the Accept header rules out is a 406."""
    ranges = [r.split(";")[0].strip().lower() for r in request.headers.get("Accept", "").split(",")]
    ranges = [r for r in ranges if r]
    wants_image = bool(ranges) and ranges[0].startswith("image/")
    as_image = opts.response == "image" if opts.response is not None else wants_image
    accepted = {r.removeprefix("image/").replace("jpg", "jpeg") for r in ranges}
    fmt = opts.format
    if as_image and wants_image and "*" not in accepted and "*/*" not in ranges:
        usable = [f for f in FORMATS if f in accepted]
        if fmt is None and usable:
            fmt = usable[0]
        if fmt is None or fmt not in accepted:
            asked = request.headers.get("Accept")
            raise BadRequest(
                "format",
                (f"{fmt} is not in Accept: {asked}" if fmt else f"Accept: {asked} names none")
                + f" (the engine makes {', '.join(FORMATS)})",
                status=406,
            )
    if as_image and not opts.image:
        raise BadRequest("image", "cannot be false when the response is the image")
    return as_image, fmt


def _score(c: Sampled) -> float:
    assert c.score is not None, "every chosen caption is scored (engine/decoding/jobs.py)"
    return c.score


def _answer(result: MemeResult, as_image: bool) -> web.Response:
    first = result.captions[0]
    if as_image and result.image is not None:
        return web.Response(
            body=result.image,
            content_type=f"image/{result.image_format}",
            headers={
                HEADER_MODEL: result.model_version,
                HEADER_BOXES: json.dumps(first.boxes),
                HEADER_ALT_TEXT: result.alt_text[:500],
            },
        )
    return _json(
        MemeResponse(
            template=template_info(result.template),
            boxes=first.boxes,
            logprob=first.logprob,
            score=_score(first),
            score_parts=first.score_parts,
            captions=[
                CaptionResult(
                    boxes=c.boxes, logprob=c.logprob, score=_score(c), score_parts=c.score_parts
                )
                for c in result.captions
            ],
            options=result.options,
            model_version=result.model_version,
            timings_ms=result.timings_ms,
            image=None
            if result.image is None or result.image_format is None
            else ImagePayload(
                format=result.image_format,
                alt_text=result.alt_text,
                data_base64=base64.b64encode(result.image).decode(),
            ),
        )
    )


async def memes(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    req = await _json_body(request, MemeRequest)
    as_image, fmt = _negotiate(request, req)
    template = service.resolve(req.template.strip())
    return _answer(await service.generate(req, template, fmt=fmt), as_image)


async def upload(request: web.Request) -> web.StreamResponse:
    """multipart/form-data: an `image` file part and an optional `options` JSON part."""
    service = request.app[SERVICE]
    limit = service.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + JSON_BODY_LIMIT:
        raise BadRequest(
            "image", f"larger than {limit:,} bytes (MEMEBOT_MAX_UPLOAD_BYTES)", status=413
        )
    data, opts = await _within_body_timeout(request, _read_upload(request, limit))
    as_image, fmt = _negotiate(request, opts)
    return _answer(await service.generate_on_upload(opts, data, fmt=fmt), as_image)


async def _read_upload(request: web.Request, limit: int) -> tuple[bytes, UploadOptions]:
    if not request.content_type.startswith("multipart/"):
        raise BadRequest(
            "body", "expected multipart/form-data with an 'image' part (and 'options')", status=415
        )
    data: bytes | None = None
    opts = UploadOptions()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("body", "nested multipart is not supported")
            if part.name == "image":
                data = await _read_part(part, limit, "image")
            elif part.name == "options":
                opts = _upload_options(await _read_part(part, JSON_BODY_LIMIT, "options"))
            else:
                raise BadRequest(str(part.name), "unknown part (expected 'image' and 'options')")
    # aiohttp's words for a malformed multipart body: ValueError, or a part's headers that
    # do not parse (InvalidHeader, an HttpProcessingError).
    except (ValueError, HttpProcessingError) as e:
        why = e.message if isinstance(e, HttpProcessingError) else str(e)
        raise BadRequest("body", f"not valid multipart/form-data ({why.strip()})") from None
    if not data:
        raise BadRequest("image", "required: an image file part")
    return data, opts


def _upload_options(raw: bytes) -> UploadOptions:
    try:
        return parse_json(UploadOptions, raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("options", "not UTF-8") from None
    except BadRequest as e:  # named inside the part: options.<field>
        raise BadRequest(
            "options" if e.field == "body" else f"options.{e.field}", e.problem
        ) from None


async def _read_part(part: BodyPartReader, limit: int, name: str) -> bytes:
    buf = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            raise BadRequest(name, f"larger than {limit:,} bytes", status=413)
    return bytes(buf)


async def templates(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    try:
        q = TemplateQuery.model_validate(dict(request.query))
    except ValidationError as e:
        raise bad_request(e) from None
    hits = service.catalog.search(q.q, len(service.catalog))  # every match, for the total
    page = hits[q.offset : q.offset + q.limit]
    return _json(TemplatesResponse(templates=[template_info(t) for t in page], total=len(hits)))


async def reload(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = await _json_body(request, ReloadRequest)
    previous = service.model.version
    try:
        model = await service.reload(Path(body.path))
    except MemebotError as e:  # the artifact at `path` cannot be served
        return _error(422, str(e), field="path", serving=previous)
    return _json(ReloadResponse(model_version=model.version, previous=previous))


async def healthz(request: web.Request) -> web.Response:
    return _json(HealthResponse(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if not service.scheduler.running:
        return _error(503, "not ready: the decoding loop is not running")
    return _json(
        ReadyResponse(
            status="ready", model_version=service.model.version, decoder=service.model.step_backend
        )
    )


async def metrics_handler(request: web.Request) -> web.Response:
    service, m = request.app[SERVICE], request.app[METRICS]
    m.queue.set(service.scheduler.queue_depth)
    m.in_flight.set(service.scheduler.in_flight)
    m.model.clear()
    m.model.labels(service.model.version).set(1)
    resp = web.Response(body=generate_latest(m.registry))
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
