"""Command-line flags from an API model: one flag per field, its type, choices, default and help
taken from engine/schema/, so `memebot generate` and POST /v1/memes cannot drift apart.

A field `max_len` becomes `--max-len`; `n` becomes `-n`; a boolean that defaults to true becomes
`--no-<name>`. Flags left out are left out of the body too, so the model's defaults apply.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine.schema import BadRequest


def flag_name(field: str) -> str:
    return f"-{field}" if len(field) == 1 else "--" + field.replace("_", "-")


def _base_type(annotation: Any) -> Any:
    """`int | None` -> int; Annotated[...] is already unwrapped by pydantic."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _shown_default(info: FieldInfo, override: Mapping[str, str], name: str) -> str:
    if name in override:
        return override[name]
    return "see above" if info.default in (None, "") else str(info.default)


def add_model_flags(
    parser: argparse.ArgumentParser,
    model: type[BaseModel],
    *,
    skip: frozenset[str] = frozenset(),
    shown_defaults: Mapping[str, str] | None = None,
) -> None:
    """One flag per field of `model` but `skip`; `shown_defaults` replaces a default in --help
    (e.g. one that comes from a setting)."""
    shown = shown_defaults or {}
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        kind = _base_type(info.annotation)
        text = (info.description or "").replace("%", "%%")
        if kind is bool:
            if info.default is True:
                parser.add_argument(
                    f"--no-{name.replace('_', '-')}",
                    dest=name,
                    action="store_const",
                    const=False,
                    default=None,
                    help=f"do not: {text}",
                )
            else:
                parser.add_argument(
                    flag_name(name), dest=name, action="store_const", const=True, default=None,
                    help=text,
                )  # fmt: skip
            continue
        kwargs: dict[str, Any] = {"dest": name, "default": None, "metavar": name.upper()}
        if get_origin(kind) is Literal:
            choices = get_args(kind)
            kwargs["choices"] = choices
            if not all(c in text for c in choices):
                text += f" [{', '.join(choices)}]"
        elif kind in (int, float, str):
            kwargs["type"] = kind
        default = _shown_default(info, shown, name)
        if default != "see above" and "default" not in text:
            text += f" (default: {default})"
        parser.add_argument(flag_name(name), help=text, **kwargs)


def given(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The fields whose flags were given (for `model.model_validate`)."""
    return {k: getattr(args, k) for k in model.model_fields if getattr(args, k, None) is not None}


def flag_problem(e: BadRequest, *, positional: Mapping[str, str] | None = None) -> str:
    """A BadRequest as the CLI says it: `--top-p: must be greater than 0.0, got 0.0`."""
    name = (positional or {}).get(e.field) or flag_name(e.field)
    if e.field == "image":
        name = "--no-image"
    return f"{name}: {e.problem}"
