"""OpenAPI 3.1 description of the engine's HTTP API (served at GET /openapi.json)."""

from __future__ import annotations

from typing import Any

from engine.decoding.pickers import METHODS

_ERR = {
    "description": "Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "memebot engine",
        "version": "1",
        "description": "Generates meme captions with a character-level model and renders them.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
            },
            "MemeRequest": {
                "type": "object",
                "required": ["template"],
                "additionalProperties": False,
                "properties": {
                    "template": {
                        "type": "string",
                        "maxLength": 100,
                        "description": "slug, name, alias or Imgflip id",
                    },
                    "boxes": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 8,
                        "description": "default: the template's",
                    },
                    "start": {
                        "type": "string",
                        "maxLength": 200,
                        "description": "caption starts with this; '|' ends a box",
                    },
                    "max_len": {"type": "integer", "minimum": 4, "maximum": 200, "default": 82},
                    "decoding": {
                        "type": "string",
                        "default": "calibrated",
                        "enum": list(METHODS),
                    },
                    "min_score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                    "temperature": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 10,
                        "default": 1,
                    },
                    "top_k": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 0},
                    "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1},
                    "beam_width": {"type": "integer", "minimum": 1, "maximum": 16, "default": 5},
                    "seed": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "same seed, same caption",
                    },
                    "n": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                    "allow_empty_boxes": {"type": "boolean", "default": False},
                    "image": {
                        "type": "boolean",
                        "default": True,
                        "description": "render the image",
                    },
                    "format": {
                        "type": "string",
                        "enum": ["jpeg", "png", "webp"],
                        "default": "jpeg",
                    },
                    "response": {"type": "string", "enum": ["json", "image"], "default": "json"},
                },
            },
            "Template": {
                "type": "object",
                "properties": {
                    "slug": {"type": "string"},
                    "name": {"type": "string"},
                    "imgflip_id": {"type": ["integer", "null"]},
                    "aliases": {"type": "array", "items": {"type": "string"}},
                    "box_count": {"type": "integer"},
                    "image_url": {"type": ["string", "null"]},
                },
            },
            "MemeResponse": {
                "type": "object",
                "properties": {
                    "template": {"$ref": "#/components/schemas/Template"},
                    "boxes": {"type": "array", "items": {"type": "string"}},
                    "logprob": {"type": "number"},
                    "captions": {"type": "array", "items": {"type": "object"}},
                    "options": {"type": "object"},
                    "model_version": {"type": "string"},
                    "timings_ms": {"type": "object"},
                    "image": {
                        "type": ["object", "null"],
                        "properties": {
                            "format": {"type": "string"},
                            "alt_text": {"type": "string"},
                            "data_base64": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/memes": {
            "post": {
                "summary": "Generate a caption and render the meme",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/MemeRequest"}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "JSON, or the image (response=image or Accept: image/*)",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/MemeResponse"}
                            },
                            "image/jpeg": {},
                            "image/png": {},
                            "image/webp": {},
                        },
                    },
                    "400": _ERR,
                    "401": _ERR,
                    "404": _ERR,
                    "503": {**_ERR, "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
                    "504": _ERR,
                },
            }
        },
        "/v1/templates": {
            "get": {
                "summary": "Search templates (at most 25, suited to Discord autocomplete)",
                "parameters": [
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 25},
                    },
                ],
                "responses": {
                    "200": {"description": "Matching templates"},
                    "400": _ERR,
                    "401": _ERR,
                },
            }
        },
        "/v1/model/reload": {
            "post": {
                "summary": "Load another artifact and swap it in atomically",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["path"],
                                "properties": {"path": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "Swapped"},
                    "400": _ERR,
                    "401": _ERR,
                    "422": {"description": "Artifact refused; the old model keeps serving"},
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Process is up",
                "security": [],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Model loaded and decoding loop running",
                "security": [],
                "responses": {
                    "200": {
                        "description": "ready: status, model_version, and decoder (what runs "
                        "a decoding step: kernel, numpy or keras)"
                    },
                    "503": _ERR,
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text format"}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
    },
}
