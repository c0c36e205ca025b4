"""What curation borrows from training: the same cleaning rules and the base corpus (for
dedupe), and the bot's content filter. Imported by the worker and the CLI only."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path


def training_cleaner() -> Callable[
    [Sequence[tuple[str, tuple[str, ...]]]], list[tuple[str, ...] | None]
]:
    """training.cleaning applied to each caption alone: its cleaned boxes, or None if a rule
    drops it (duplicates among ratings are curation's business, not cleaning's)."""
    from training.cleaning import clean_captions, lingua_english_scorer
    from training.data import Caption

    scorer = functools.cache(lingua_english_scorer)

    def clean(items: Sequence[tuple[str, tuple[str, ...]]]) -> list[tuple[str, ...] | None]:
        out: list[tuple[str, ...] | None] = []
        for template, boxes in items:
            kept, _ = clean_captions([Caption(template, boxes)], english_scorer=scorer())
            out.append(kept[0].boxes if kept else None)
        return out

    return clean


def base_pairs(data: Path, cache_dir: Path | None) -> set[tuple[str, str]]:
    """(template, "box|box|") of every cleaned caption of the base corpus."""
    from training.prepare import prepare

    prep = prepare(data, cache_dir=cache_dir)
    return {(c.template, c.text) for c in prep.captions("all")}


def content_filter(level: str = "standard") -> Callable[[str], bool]:
    """The bot's content filter (bot/filtering.py) at `level`, as curation's `blocked`."""
    from bot.filtering import blocked

    return lambda text: bool(blocked(text, level))
