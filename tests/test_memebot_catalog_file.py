"""memebot/catalog_file.py: the catalog's box shapes read without the engine are the ones the
engine's catalog lays out, so lengths borrowed over either are the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.catalog import Catalog
from engine.lengths import borrow_for_catalog
from memebot.artifact.templates import TemplateTable
from memebot.catalog_file import read_layouts
from memebot.errors import ArtifactError
from memebot.lengths import borrow_by_layout

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "default"


def test_the_shapes_are_the_engine_catalogs_at_every_box_count() -> None:
    catalog = Catalog.load()
    layouts = read_layouts()
    assert [t.slug for t in layouts] == [t.slug for t in catalog.templates]
    assert any(not up for t in layouts for _, _, up in t.boxes)  # both styles are read
    for laid, t in zip(layouts, catalog.templates, strict=True):
        assert laid.box_count == t.box_count
        for n in range(1, max(t.box_count, len(t.boxes)) + 3):  # past the boxes: bands
            assert laid.shapes(n) == t.shapes(n), (t.slug, n)


def test_the_shipped_model_borrows_the_same_lengths_either_way() -> None:
    table = TemplateTable.load(SHIPPED / "templates.json")
    engine = borrow_for_catalog(table, Catalog.load())
    assert engine.borrowed  # else the comparison says nothing
    assert borrow_by_layout(table, read_layouts()).borrowed == engine.borrowed


def test_an_unreadable_catalog_is_an_artifact_error(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.json"
    bad.write_text(json.dumps({"templates": [{"slug": "x", "box_count": 2}]}), encoding="utf-8")
    with pytest.raises(ArtifactError, match="catalog"):
        read_layouts(bad)
    with pytest.raises(ArtifactError):
        read_layouts(tmp_path / "missing.json")
