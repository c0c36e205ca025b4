"""Refusals that name their field: `BadRequest`, the `ErrorBody` every 4xx/5xx answer carries,
and `parse`/`parse_json`, which turn pydantic's ValidationError into a BadRequest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, Field, ValidationError


class BadRequest(Exception):
    """A request the API refuses: `field` names the part that is wrong ("body" for all of it);
    `status` is the HTTP answer (400, or 406/413/415 where those say it better)."""

    def __init__(self, field: str, problem: str, *, status: int = 400):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.status = status


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer's body."""

    error: str = Field(description="what is wrong, starting with the field's name when one is")
    field: str | None = Field(None, description="the request field (or part) that is wrong")
    serving: str | None = Field(None, description="reload refused: the model still serving")


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: Any) -> M:
    """Validate a decoded JSON body; the first problem raises BadRequest naming its field."""
    if not isinstance(body, Mapping):
        raise BadRequest("body", "expected a JSON object")
    try:
        return model.model_validate(_integral_floats(model, body))
    except ValidationError as e:
        raise bad_request(e, known=sorted(model.model_fields)) from None


@cache
def _int_fields(model: type[BaseModel]) -> frozenset[str]:
    def has_int(ann: Any) -> bool:
        return ann is int or any(has_int(a) for a in get_args(ann))

    return frozenset(n for n, f in model.model_fields.items() if has_int(f.annotation))


def _integral_floats(model: type[BaseModel], body: Mapping[str, Any]) -> Mapping[str, Any]:
    """JSON Schema's integer is any number without a fraction, so `8.0` is one: it becomes 8
    for the strict models (a fraction, `8.5`, is still refused)."""
    ints = _int_fields(model)
    fix = {
        k: int(v)
        for k, v in body.items()
        if k in ints and type(v) is float and v.is_integer() and abs(v) < 2**64
    }
    return {**body, **fix} if fix else body


def parse_json(model: type[M], raw: bytes | str) -> M:
    """As `parse`, from JSON text (the body named "body" when it is not JSON)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise BadRequest("body", f"not valid JSON ({_short(e)})") from None
    return parse(model, body)


def bad_request(e: ValidationError, *, known: list[str] | None = None) -> BadRequest:
    err = e.errors(include_url=False)[0]
    field = ".".join(str(p) for p in err["loc"]) or "body"
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        problem = "unknown field" + (f" (known: {', '.join(known)})" if known else "")
    elif kind == "missing":
        problem = "required"
    elif kind == "literal_error":
        problem = f"got {err['input']!r}; choose one of {ctx.get('expected', '')}"
    elif kind in ("int_type", "int_from_float", "int_parsing"):
        problem = f"expected an integer, got {_type_name(err['input'])}"
    elif kind in ("float_type", "float_parsing", "finite_number"):
        problem = f"expected a number, got {_type_name(err['input'])}"
    elif kind in ("bool_type", "bool_parsing"):
        problem = f"expected true or false, got {_type_name(err['input'])}"
    elif kind == "string_type":
        problem = f"expected a string, got {_type_name(err['input'])}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        problem = f"{_bound(kind, ctx)}, got {err['input']!r}"
    elif kind == "string_too_long":
        problem = f"at most {ctx['max_length']} characters, got {len(err['input'])}"
    elif kind == "string_too_short":
        problem = "required: must not be empty"
    elif kind == "value_error":
        problem = str(ctx.get("error", err["msg"]))
    else:
        problem = err["msg"]
    return BadRequest(field, problem)


def _bound(kind: str, ctx: Mapping[str, Any]) -> str:
    return {
        "greater_than": f"must be greater than {ctx.get('gt')}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "less_than": f"must be less than {ctx.get('lt')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
    }[kind]


def _type_name(v: Any) -> str:
    return {
        bool: "true/false",
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(v), type(v).__name__)


def _short(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return str(e)[:200]
