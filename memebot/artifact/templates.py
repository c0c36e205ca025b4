"""The template table saved with every model: which templates it knows, how to look them up
(memebot/names.py, the same lookup as the engine's catalog) and how long their boxes run.

Slot 0 is the generic "any template" slot: the model learns it from captions whose template
was dropped during training, and it serves every template with no training captions.
Building a table from captions is training's job (training/templates.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from memebot.artifact.jsonio import read_json, write_json
from memebot.errors import ArtifactError
from memebot.names import NameIndex, lookup_key

GENERIC_SLOT = 0
# Box lengths are kept as quantiles at these levels (0%, 10%, ..., 100%) so `calibrated`
# decoding can draw a length per box by inverse CDF.
LENGTH_LEVELS = tuple(i / 10 for i in range(11))
Quantiles = tuple[float, ...]
__all__ = [
    "GENERIC_SLOT",
    "LENGTH_LEVELS",
    "TemplateEntry",
    "TemplateTable",
    "lookup_key",
    "mean_lengths",
]


@dataclass(frozen=True)
class TemplateEntry:
    slug: str
    name: str
    imgflip_id: int | None
    aliases: tuple[str, ...]
    box_count: int
    slot: int  # conditioning slot; GENERIC_SLOT when the model saw no captions for it
    train_captions: int
    # Per box index, quantiles (LENGTH_LEVELS) of the box's length in characters over the
    # training captions with `box_count` boxes. Empty in artifacts made before they existed.
    box_lengths: tuple[Quantiles, ...] = ()

    @property
    def names(self) -> list[str]:
        """Everything the entry answers to: slug, name, aliases, Imgflip id."""
        ids = [str(self.imgflip_id)] if self.imgflip_id is not None else []
        return [self.slug, self.name, *self.aliases, *ids]


def mean_lengths(
    pool: Iterable[tuple[Quantiles, ...]], n_boxes: int
) -> tuple[Quantiles, ...] | None:
    """Per box, the mean quantiles over the templates of `pool` with `n_boxes` boxes (none:
    over all of them, a shorter one's last box standing in for the boxes past it); None for
    an empty pool. What a template with no lengths of its own draws from."""
    some = [q for q in pool if q]
    pool = [q for q in some if len(q) == n_boxes] or some
    if not pool:
        return None
    return tuple(
        tuple(float(v) for v in np.mean([q[min(i, len(q) - 1)] for q in pool], axis=0))
        for i in range(n_boxes)
    )


class TemplateTable:
    def __init__(
        self,
        entries: Iterable[TemplateEntry],
        borrowed: Mapping[str, tuple[Quantiles, ...]] | None = None,
    ):
        self.entries = sorted(entries, key=lambda e: e.slug)
        self.index = NameIndex(((e, e.names) for e in self.entries), lambda e: e.slug)
        self._by_slug = {e.slug: e for e in self.entries}
        self._fallback_lengths: dict[int, tuple[Quantiles, ...] | None] = {}
        # Lengths for templates without captions (none of their own), worked out by whoever
        # serves the table (the engine borrows them from templates laid out alike:
        # memebot/lengths.py). Never saved: they depend on the layouts, which are not the
        # model's. A template with a slot and lengths of its own never takes them.
        self.borrowed: dict[str, tuple[Quantiles, ...]] = dict(borrowed or {})

    def borrowing(self, lengths: Mapping[str, tuple[Quantiles, ...]]) -> TemplateTable:
        """The same table with `lengths` for the templates without captions."""
        return TemplateTable(self.entries, lengths)

    @property
    def n_slots(self) -> int:
        return 1 + max((e.slot for e in self.entries), default=0)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, slug: str) -> TemplateEntry | None:
        return self._by_slug.get(slug)

    def slot_of(self, slug: str) -> int:
        e = self._by_slug.get(slug)
        return e.slot if e else GENERIC_SLOT

    def length_quantiles(self, slug: str, n_boxes: int) -> list[Quantiles] | None:
        """Length quantiles for each of `n_boxes` boxes: the template's own; for a template
        without captions (the generic slot, whose lengths training filled in from every
        caption with its box count), lengths borrowed for it with that many boxes when there
        are, else what training filled in; for one the table lacks, the mean over the
        templates with that many boxes (mean_lengths). Boxes past the known ones reuse the
        last. None when the table has no length statistics."""
        e = self._by_slug.get(slug)
        borrowed = self.borrowed.get(slug, ())
        if e and e.box_lengths and (e.slot != GENERIC_SLOT or len(borrowed) != n_boxes):
            qs: tuple[Quantiles, ...] | None = e.box_lengths
        elif len(borrowed) == n_boxes:
            qs = borrowed
        else:
            qs = self._lengths_for_count(n_boxes)
        if not qs:
            return None
        return [qs[min(i, len(qs) - 1)] for i in range(n_boxes)]

    def _lengths_for_count(self, n_boxes: int) -> tuple[Quantiles, ...] | None:
        if n_boxes not in self._fallback_lengths:
            pool = (e.box_lengths for e in self.entries)
            self._fallback_lengths[n_boxes] = mean_lengths(pool, n_boxes)
        return self._fallback_lengths[n_boxes]

    def lookup(self, query: str | int) -> TemplateEntry:
        """By slug, name, alias or Imgflip id (ignoring case and punctuation), else a unique
        prefix; raises TemplateNotFound (memebot/names.py, shared with the engine's catalog)."""
        return self.index.lookup(query)

    def to_json(self) -> list[dict[str, object]]:
        return [asdict(e) for e in self.entries]

    @classmethod
    def from_json(cls, obj: object, source: Path | str = "templates.json") -> TemplateTable:
        if not isinstance(obj, list):
            raise ArtifactError(f"{source}: expected a list of templates")
        try:
            return cls(
                TemplateEntry(
                    **{
                        **e,
                        "aliases": tuple(e["aliases"]),
                        "box_lengths": tuple(tuple(q) for q in e.get("box_lengths", ())),
                    }
                )
                for e in obj
            )
        except (TypeError, KeyError, AttributeError) as e:
            raise ArtifactError(f"{source}: malformed template entry ({e})") from e

    def save(self, path: Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> TemplateTable:
        return cls.from_json(read_json(path, "template table"), path)
