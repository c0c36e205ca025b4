"""The engine's HTTP API (aiohttp). See engine/openapi.py for the document served at
/openapi.json. Binds 127.0.0.1 by default; an optional bearer token guards /v1 and /metrics."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from engine.openapi import OPENAPI
from engine.scheduler import QueueFull
from engine.service import MemeService, params_summary
from engine.validate import BadRequest, parse_meme_request
from memebot.errors import ArtifactError, MemebotError, TemplateNotFound, UsageError

log = logging.getLogger("memebot.engine")
SERVICE: web.AppKey[MemeService] = web.AppKey("service", MemeService)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


def _error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def build_app(service: MemeService) -> web.Application:
    token = service.settings.engine_token
    metrics = Metrics()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = (
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "unmatched"
        )
        started = time.perf_counter()
        try:
            if token and request.path not in OPEN_PATHS:
                auth = request.headers.get("Authorization", "")
                given = auth.removeprefix("Bearer ").encode() if auth.startswith("Bearer ") else b""
                if not hmac.compare_digest(given, token.encode()):
                    resp: web.StreamResponse = _error(401, "missing or wrong bearer token")
                    resp.headers["WWW-Authenticate"] = "Bearer"
                    return resp
            resp = await handler(request)
        except BadRequest as e:
            resp = _error(400, str(e), field=e.field)
        except QueueFull:
            resp = _error(503, "engine is at capacity, retry shortly")
            resp.headers["Retry-After"] = "1"
        except TimeoutError:
            resp = _error(
                504, f"generation took longer than {service.settings.request_timeout:g} s"
            )
        except ArtifactError as e:
            resp = _error(422, str(e))
        except TemplateNotFound as e:
            resp = _error(404, str(e))
        except UsageError as e:
            resp = _error(400, str(e))
        except web.HTTPException as e:
            resp = _error(e.status, e.reason)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            resp = _error(500, "internal error (logged)")
        metrics.requests.labels(route, str(resp.status)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return resp

    service.scheduler.on_step = metrics.batch.observe
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[SERVICE] = service
    app[METRICS] = metrics
    app.router.add_post("/v1/memes", memes)
    app.router.add_get("/v1/templates", templates)
    app.router.add_post("/v1/model/reload", reload)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/openapi.json", openapi)

    async def on_startup(app: web.Application) -> None:
        await app[SERVICE].start()

    async def on_cleanup(app: web.Application) -> None:
        await app[SERVICE].stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest("body", f"not valid JSON ({e})") from e


async def memes(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    req = parse_meme_request(
        await _json_body(request), default_format=service.settings.image_format
    )
    wants_image = req.response == "image" or request.headers.get("Accept", "").startswith("image/")
    p = req.params
    if wants_image and not p.render:
        raise BadRequest("image", "cannot be false when an image is asked for (Accept: image/*)")
    result = await service.generate(p)
    n_boxes = p.boxes or result.template.box_count
    if wants_image and result.image is not None:
        return web.Response(
            body=result.image,
            content_type=f"image/{result.image_format}",
            headers={
                "X-Memebot-Model": result.model_version,
                "X-Memebot-Boxes": json.dumps(result.captions[0].boxes),
                "X-Memebot-Alt-Text": result.alt_text[:500],
            },
        )
    first = result.captions[0]
    return web.json_response(
        {
            "template": result.template.to_json(),
            "boxes": first.boxes,
            "logprob": first.logprob,
            "captions": [{"boxes": c.boxes, "logprob": c.logprob} for c in result.captions],
            "options": params_summary(p, n_boxes),
            "model_version": result.model_version,
            "timings_ms": result.timings_ms,
            "image": None
            if result.image is None
            else {
                "format": result.image_format,
                "alt_text": result.alt_text,
                "data_base64": base64.b64encode(result.image).decode(),
            },
        }
    )


async def templates(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    q = request.query.get("q", "")
    try:
        limit = int(request.query.get("limit", "25"))
    except ValueError as e:
        raise BadRequest("limit", "expected an integer") from e
    if not 1 <= limit <= 25:
        raise BadRequest("limit", "must be between 1 and 25")
    return web.json_response({"templates": [t.to_json() for t in service.catalog.search(q, limit)]})


async def reload(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("path"), str) or not body["path"]:
        raise BadRequest("path", "required: the artifact directory to load")
    previous = service.model.version
    try:
        model = await service.reload(Path(body["path"]))
    except MemebotError as e:
        return _error(422, str(e), serving=previous)
    return web.json_response({"model_version": model.version, "previous": previous})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if not service.scheduler.running:
        return _error(503, "not ready: the decoding loop is not running")
    return web.json_response(
        {
            "status": "ready",
            "model_version": service.model.version,
            "decoder": service.model.step_backend,
        }
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
    return web.json_response(OPENAPI)
