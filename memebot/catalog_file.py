"""The template catalog's file (engine/catalog.json, written by scripts/build_catalog.py): where
it is, and the box shapes in it for a layer that may not import the engine.

The engine reads the whole catalog (engine/catalog.py: names, images, how each box renders);
a taste fit (retrain/taste_fit.py) needs only what borrowing box lengths by layout reads
(memebot/lengths.py), so that it measures a server's lengths against the ones the engine draws.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from memebot.errors import ArtifactError
from memebot.lengths import BoxShape

# The catalog ships inside the engine package; this layer reads it as data, never as code.
CATALOG_PATH = Path(__file__).resolve().parent.parent / "engine" / "catalog.json"


@dataclass(frozen=True)
class CatalogLayout:
    """A catalog template's boxes as width, height and upper-case style (memebot/lengths.py
    Laid): engine/catalog.py's Template.layout without what rendering needs."""

    slug: str
    box_count: int
    boxes: tuple[BoxShape, ...]

    def shapes(self, n: int) -> list[BoxShape]:
        """Boxes for n texts: the catalog's first n, or n evenly stacked full-width upper-case
        bands beyond them (as Template.layout lays them out)."""
        if n <= len(self.boxes):
            return list(self.boxes[:n])
        return [(1.0, 1.0 / n, True) for _ in range(n)]


def read_layouts(path: Path = CATALOG_PATH) -> list[CatalogLayout]:
    """Every catalog template's layout, in slug order (as engine/catalog.py's Catalog)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        out = [
            CatalogLayout(
                e["slug"],
                int(e["box_count"]),
                tuple((b["w"], b["h"], b["style"] == "upper") for b in e["boxes"]),
            )
            for e in obj["templates"]
        ]
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ArtifactError(f"{path}: not a readable template catalog ({e})") from e
    return sorted(out, key=lambda t: t.slug)
