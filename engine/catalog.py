"""The project's template catalog (engine/catalog.json, written by scripts/build_catalog.py).

Lookup by slug, name, alias or Imgflip id ignores case and punctuation, and a unique prefix
will do (memebot/names.py, the same lookup as the model's template table); an unknown name
raises TemplateNotFound listing the three closest, which the API answers with 404. An uploaded
image (POST /v1/memes/upload) renders with `fallback_template`'s top/bottom boxes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.render import TextBox
from engine.schema import SEARCH_LIMIT
from memebot.catalog_file import CATALOG_PATH
from memebot.lengths import BoxShape
from memebot.names import NameIndex
from memebot.names import lookup_key as norm


@dataclass(frozen=True)
class Template:
    slug: str
    name: str
    imgflip_id: int | None
    aliases: tuple[str, ...]
    box_count: int
    image: str | None  # file name in the images directory
    image_url: str | None
    boxes: tuple[TextBox, ...]

    def layout(self, n: int) -> list[TextBox]:
        """Boxes for n texts: the catalog's first n, or evenly stacked bands beyond them."""
        if n <= len(self.boxes):
            return list(self.boxes[:n])
        return [TextBox(0.0, i / n, 1.0, 1.0 / n) for i in range(n)]

    def shapes(self, n: int) -> list[BoxShape]:
        """The boxes for n texts as borrowing box lengths reads them (memebot/lengths.py)."""
        return [(b.w, b.h, b.style == "upper") for b in self.layout(n)]

    def to_json(self) -> dict[str, object]:
        return {
            "slug": self.slug,
            "name": self.name,
            "imgflip_id": self.imgflip_id,
            "aliases": list(self.aliases),
            "box_count": self.box_count,
            "image_url": self.image_url,
        }


def fallback_template(name: str, box_count: int = 2) -> Template:
    """Top and bottom boxes for an image with no catalog entry (not served by the API yet)."""
    top, bottom = TextBox(0.0, 0.0, 1.0, 0.22), TextBox(0.0, 0.78, 1.0, 0.22)
    return Template(norm(name) or "custom", name, None, (), box_count, None, None, (top, bottom))


class Catalog:
    def __init__(self, templates: list[Template]):
        self.templates = sorted(templates, key=lambda t: t.slug)
        self.index = NameIndex(
            (
                (t, (t.slug, t.name, *t.aliases, *([str(t.imgflip_id)] if t.imgflip_id else [])))
                for t in self.templates
            ),
            lambda t: t.slug,
        )

    @classmethod
    def load(cls, path: Path = CATALOG_PATH) -> Catalog:
        obj = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for e in obj["templates"]:
            boxes = tuple(
                TextBox(
                    b["x"], b["y"], b["w"], b["h"], b["style"], b["color"], b["align"], b["outline"]
                )
                for b in e["boxes"]
            )
            out.append(
                Template(
                    e["slug"],
                    e["name"],
                    e.get("imgflip_id"),
                    tuple(e.get("aliases", ())),
                    int(e["box_count"]),
                    e.get("image"),
                    e.get("image_url"),
                    boxes,
                )
            )
        return cls(out)

    def __len__(self) -> int:
        return len(self.templates)

    def get(self, query: str | int) -> Template | None:
        """Exact key, else the one template that some key starts with ("drake")."""
        return self.index.get(query)

    def lookup(self, query: str | int) -> Template:
        """As `get`, or TemplateNotFound naming the closest templates."""
        return self.index.lookup(query)

    def closest(self, query: str, n: int = 3) -> list[str]:
        return self.index.closest(query, n)

    def search(self, query: str = "", limit: int = SEARCH_LIMIT) -> list[Template]:
        """Prefix matches first, then substring matches (slug, name, aliases); blank = first N."""
        q = norm(query)
        if not q:
            return self.templates[:limit]
        prefix, inside = [], []
        for t in self.templates:
            keys = [norm(k) for k in (t.slug, t.name, *t.aliases)]
            if any(k.startswith(q) for k in keys):
                prefix.append(t)
            elif any(q in k for k in keys):
                inside.append(t)
        return (prefix + inside)[:limit]
