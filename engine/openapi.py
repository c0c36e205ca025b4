"""OpenAPI 3.1 description of the engine's HTTP API (served at GET /openapi.json), generated
from the models of engine/schema/: a field, default or limit changes there and here at once.
Only the routes, their status codes and summaries are written out below."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from engine.schema import (
    HEADER_ALT_TEXT,
    HEADER_BOXES,
    HEADER_MODEL,
    HEALTH_PATH,
    MAX_OFFSET,
    MEMES_PATH,
    METRICS_PATH,
    OPENAPI_PATH,
    READY_PATH,
    RELOAD_PATH,
    SEARCH_LIMIT,
    TEMPLATES_PATH,
    UPLOAD_PATH,
    ErrorBody,
    HealthResponse,
    MemeRequest,
    MemeResponse,
    ReadyResponse,
    ReloadRequest,
    ReloadResponse,
    TemplatesResponse,
    UploadOptions,
)
from memebot.choices import FORMATS

MODELS: tuple[type[BaseModel], ...] = (
    MemeRequest,
    UploadOptions,
    MemeResponse,
    TemplatesResponse,
    ReloadRequest,
    ReloadResponse,
    ReadyResponse,
    HealthResponse,
    ErrorBody,
)
REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*codes: int) -> dict[str, Any]:
    why = {
        400: "A field is wrong: `field` names it",
        401: "Missing or wrong bearer token",
        404: "Unknown template (the message lists the closest)",
        406: "The Accept header rules out the requested image format",
        408: "The body did not arrive within MEMEBOT_BODY_TIMEOUT",
        413: "Body or upload too large",
        415: "Not multipart, or the `image` part is not an image",
        422: "Artifact refused; the old model keeps serving (`serving`)",
        503: "At capacity (Retry-After) or not ready",
        504: "Generation took longer than MEMEBOT_REQUEST_TIMEOUT",
    }
    out = {str(c): _json(ErrorBody, why[c]) for c in codes}
    if 503 in codes:
        out["503"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return out


def _meme_ok(what: str) -> dict[str, Any]:
    image = {f"image/{f}": {"schema": {"type": "string", "format": "binary"}} for f in FORMATS}
    return {
        "description": f"{what}: JSON, or the image bytes (response=image, or Accept: image/* "
        f"when the body sets no response) with the caption in {HEADER_MODEL}, {HEADER_BOXES} "
        f"(a JSON list) and {HEADER_ALT_TEXT}",
        "content": {"application/json": {"schema": _ref(MemeResponse)}, **image},
    }


@cache
def openapi_document() -> dict[str, Any]:
    _, top = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "memebot engine",
            "version": "1",
            "description": "Generates meme captions with a character-level model and renders "
            "them. Errors: {error, field} with the field named.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": top["$defs"],
        },
        "security": [{"bearer": []}],
        "paths": {
            MEMES_PATH: {
                "post": {
                    "summary": "Generate a caption for a template and render the meme",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(MemeRequest)}},
                    },
                    "responses": {
                        "200": _meme_ok("The meme"),
                        **_errors(400, 401, 404, 406, 408, 413, 503, 504),
                    },
                }
            },
            UPLOAD_PATH: {
                "post": {
                    "summary": "Caption an uploaded image (the model's any-template slot, "
                    "top/bottom text)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "additionalProperties": False,  # another part: 400
                                    "properties": {
                                        "image": {"type": "string", "format": "binary"},
                                        "options": _ref(UploadOptions),
                                    },
                                },
                                "encoding": {"options": {"contentType": "application/json"}},
                            }
                        },
                    },
                    "responses": {
                        "200": _meme_ok("The meme"),
                        **_errors(400, 401, 406, 408, 413, 415, 503, 504),
                    },
                }
            },
            TEMPLATES_PATH: {
                "get": {
                    "summary": f"Search templates (at most {SEARCH_LIMIT}, suited to Discord "
                    "autocomplete)",
                    "parameters": [
                        {"name": "q", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT},
                        },
                        {
                            "name": "offset",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                        },
                    ],
                    "responses": {
                        "200": _json(TemplatesResponse, "Matching templates, best first"),
                        **_errors(400, 401),
                    },
                }
            },
            RELOAD_PATH: {
                "post": {
                    "summary": "Load another artifact and swap it in atomically (requests in "
                    "flight finish on the old model)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(ReloadRequest)}},
                    },
                    "responses": {
                        "200": _json(ReloadResponse, "Swapped"),
                        **_errors(400, 401, 408, 422),
                    },
                }
            },
            HEALTH_PATH: {
                "get": {
                    "summary": "Process is up",
                    "security": [],
                    "responses": {"200": _json(HealthResponse, "ok")},
                }
            },
            READY_PATH: {
                "get": {
                    "summary": "Model loaded and decoding loop running",
                    "security": [],
                    "responses": {"200": _json(ReadyResponse, "ready"), **_errors(503)},
                }
            },
            METRICS_PATH: {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {"description": "Prometheus text format"},
                        **_errors(401),
                    },
                }
            },
            OPENAPI_PATH: {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
    }
