"""The project's template catalog (engine/catalog.json, written by scripts/build_catalog.py).

Lookup by slug, name, alias or Imgflip id ignores case and punctuation; an unknown name is an
error (404 over HTTP) that lists the three closest. An uploaded image (POST /v1/memes/upload)
renders with `fallback_template`'s top/bottom boxes.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from engine.render import TextBox
from engine.schema import SEARCH_LIMIT
from memebot.errors import TemplateNotFound
from training.templates import lookup_key as norm

CATALOG_PATH = Path(__file__).resolve().parent / "catalog.json"


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
    top, bottom = TextBox(0.0, 0.0, 1.0, 0.22), TextBox(0.0, 0.78, 1.0, 0.22)
    return Template(norm(name) or "custom", name, None, (), box_count, None, None, (top, bottom))


class Catalog:
    def __init__(self, templates: list[Template]):
        self.templates = sorted(templates, key=lambda t: t.slug)
        self._keys: dict[str, Template] = {}
        for t in self.templates:
            for k in (t.slug, t.name, *t.aliases, *([str(t.imgflip_id)] if t.imgflip_id else [])):
                self._keys.setdefault(norm(k), t)

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
        q = norm(str(query))
        if not q:
            return None
        if q in self._keys:
            return self._keys[q]
        hits = {id(t): t for k, t in self._keys.items() if k.startswith(q)}
        return next(iter(hits.values())) if len(hits) == 1 else None

    def lookup(self, query: str | int) -> Template:
        t = self.get(query)
        if t is None:
            raise TemplateNotFound(
                f"unknown template {query!r}; closest: {', '.join(self.closest(str(query)))}"
            )
        return t

    def closest(self, query: str, n: int = 3) -> list[str]:
        q = norm(query)
        scored = sorted(
            self.templates,
            key=lambda t: (
                -max(
                    difflib.SequenceMatcher(None, q, norm(k)).ratio()
                    for k in (t.slug, t.name, *t.aliases)
                )
            ),
        )
        return [t.slug for t in scored[:n]]

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
