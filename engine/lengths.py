"""The engine's box lengths for templates without captions: the model's template table with
lengths borrowed by layout over the engine's catalog (memebot/lengths.py, where the fit lives
so that a taste fit, retrain/taste_fit.py, measures lengths against the same ones)."""

from __future__ import annotations

from engine.catalog import Catalog
from memebot.artifact.templates import TemplateTable
from memebot.lengths import borrow_by_layout


def borrow_for_catalog(table: TemplateTable, catalog: Catalog) -> TemplateTable:
    """`table` as the engine serves it over `catalog` (memebot/lengths.py borrow_by_layout)."""
    return borrow_by_layout(table, catalog.templates)
