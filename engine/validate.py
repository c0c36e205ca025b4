"""Request validation: every field checked, an error names the field and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.decoding.pickers import METHODS, Decoding
from engine.render import FORMATS
from engine.service import MemeParams

MAX_SEED = 2**63 - 1


class BadRequest(Exception):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class MemeRequest:
    params: MemeParams
    response: str  # json | image


_FIELDS = {
    "template",
    "boxes",
    "start",
    "max_len",
    "decoding",
    "min_score",
    "temperature",
    "top_k",
    "top_p",
    "beam_width",
    "seed",
    "n",
    "allow_empty_boxes",
    "image",
    "format",
    "response",
}


def _int(body: dict[str, Any], name: str, lo: int, hi: int, default: int | None) -> int | None:
    v = body.get(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadRequest(name, f"expected an integer, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise BadRequest(name, f"must be between {lo} and {hi}, got {v}")
    return v


def _float(
    body: dict[str, Any], name: str, lo: float, hi: float, default: float, *, lo_open: bool = False
) -> float:
    v = body.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BadRequest(name, f"expected a number, got {type(v).__name__}")
    if not (lo < v <= hi if lo_open else lo <= v <= hi):
        raise BadRequest(name, f"must be in {'(' if lo_open else '['}{lo}, {hi}], got {v}")
    return float(v)


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    v = body.get(name, default)
    if not isinstance(v, bool):
        raise BadRequest(name, f"expected true or false, got {type(v).__name__}")
    return v


def _str(body: dict[str, Any], name: str, default: str | None, max_len: int) -> str | None:
    v = body.get(name, default)
    if v is None:
        return None
    if not isinstance(v, str):
        raise BadRequest(name, f"expected a string, got {type(v).__name__}")
    if len(v) > max_len:
        raise BadRequest(name, f"at most {max_len} characters, got {len(v)}")
    if any(not 32 <= ord(c) < 127 for c in v):
        raise BadRequest(name, "only printable ASCII characters are allowed")
    return v


def parse_meme_request(body: Any, *, default_format: str) -> MemeRequest:
    if not isinstance(body, dict):
        raise BadRequest("body", "expected a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise BadRequest(unknown[0], f"unknown field (known: {', '.join(sorted(_FIELDS))})")
    template = _str(body, "template", None, 100)
    if not template or not template.strip():
        raise BadRequest("template", "required: a slug, name, alias or Imgflip id")
    boxes = _int(body, "boxes", 1, 8, None)
    start = _str(body, "start", "", 200) or ""
    max_len = _int(body, "max_len", 4, 200, 82)
    assert max_len is not None
    if boxes is not None and max_len < 2 * boxes:
        raise BadRequest("max_len", f"must leave room for {boxes} boxes (at least {2 * boxes})")
    method = _str(body, "decoding", "calibrated", 20)
    if method not in METHODS:
        raise BadRequest("decoding", f"unknown method {method!r} (choose: {', '.join(METHODS)})")
    decoding = Decoding(
        method=method,
        min_score=_float(
            body, "min_score", 0.0, 1.0, 0.1 if method != "beam" else 0.0001, lo_open=True
        ),
        temperature=_float(body, "temperature", 0.0, 10.0, 1.0, lo_open=True),
        top_k=_int(body, "top_k", 0, 1000, 0) or 0,
        top_p=_float(body, "top_p", 0.0, 1.0, 1.0, lo_open=True),
        beam_width=_int(body, "beam_width", 1, 16, 5) or 5,
    )
    fmt = _str(body, "format", default_format, 10)
    if fmt not in FORMATS:
        raise BadRequest("format", f"choose one of {', '.join(FORMATS)}")
    response = _str(body, "response", "json", 10)
    if response not in ("json", "image"):
        raise BadRequest("response", "choose json or image")
    want_image = _bool(body, "image", True)
    if response == "image" and not want_image:
        raise BadRequest("image", "cannot be false when the response is the image")
    params = MemeParams(
        template=template.strip(),
        boxes=boxes,
        start=start,
        max_len=max_len,
        decoding=decoding,
        seed=_int(body, "seed", 0, MAX_SEED, None),
        n=_int(body, "n", 1, 10, 1) or 1,
        allow_empty_boxes=_bool(body, "allow_empty_boxes", False),
        render=want_image,
        fmt=fmt,
    )
    return MemeRequest(params, response)
