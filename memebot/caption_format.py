"""The caption format every model writes and every client reads, in one place (stdlib only).

A caption is its boxes, each closed by BOX_END: `box|box|`. Cleaning keeps captions of at most
MAX_CHARS characters (markers included), so that is also the API's default `max_len`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, ClassVar

BOX_END = "|"  # end-of-box marker; never allowed inside a box
MAX_CHARS = 82  # longest caption `box|box|`, markers included (cleaning keeps these)


def caption_text(boxes: Iterable[str]) -> str:
    """The caption of `boxes` as models read and write it: each box closed by BOX_END."""
    return "".join(b + BOX_END for b in boxes)


class CaptionRow:
    """What curated rows (dataclasses with a `boxes` field) share: their caption as models read
    it, and a JSON form with the boxes as a list."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # only dataclasses take this mixin
    boxes: tuple[str, ...]

    @property
    def text(self) -> str:
        return caption_text(self.boxes)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["boxes"] = list(self.boxes)
        return d
