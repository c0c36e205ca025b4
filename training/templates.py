"""The template table saved with every model: which templates it knows and how to look them up.

Slot 0 is the generic "any template" slot: the model learns it from captions whose template
was dropped during training, and it serves every template with no training captions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from memebot.errors import ArtifactError, UsageError
from training.data import Caption, TemplateMeta
from training.jsonio import read_json, write_json

GENERIC_SLOT = 0
DEFAULT_BOX_COUNT = 2
# Box lengths are kept as quantiles at these levels (0%, 10%, ..., 100%) so `calibrated`
# decoding can draw a length per box by inverse CDF; fewer captions than MIN_LENGTH_SAMPLES
# for a template fall back to every training caption with the same number of boxes.
LENGTH_LEVELS = tuple(i / 10 for i in range(11))
MIN_LENGTH_SAMPLES = 20
Quantiles = tuple[float, ...]
# Box counts of the templates that have no captions in the shared data, read off their
# Imgflip pages and memegen layouts (db.yml has 3 boxes...). Templates with captions use
# the most common box count of their captions instead.
KNOWN_BOX_COUNTS = {
    "distracted-boyfriend": 3,
    "expanding-brain": 4,
    "boardroom-meeting-suggestion": 4,
    "who-killed-hannibal": 3,
}


def lookup_key(s: str) -> str:
    """Template names compare without case or punctuation: "Y U No!" == "y-u-no"."""
    return re.sub(r"[^a-z0-9]", "", s.lower())


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


class TemplateTable:
    def __init__(self, entries: Iterable[TemplateEntry]):
        self.entries = sorted(entries, key=lambda e: e.slug)
        self._by_key: dict[str, TemplateEntry] = {}
        for e in self.entries:
            keys = [e.slug, e.name, *e.aliases]
            if e.imgflip_id is not None:
                keys.append(str(e.imgflip_id))
            for k in keys:
                self._by_key.setdefault(lookup_key(k), e)
        self._by_slug = {e.slug: e for e in self.entries}
        self._fallback_lengths: dict[int, tuple[Quantiles, ...] | None] = {}

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
        """Length quantiles for each of `n_boxes` boxes: the template's own, else the mean over
        the templates with that many boxes; boxes past the known ones reuse the last. None when
        the table has no length statistics."""
        e = self._by_slug.get(slug)
        qs = e.box_lengths if e and e.box_lengths else self._lengths_for_count(n_boxes)
        if not qs:
            return None
        return [qs[min(i, len(qs) - 1)] for i in range(n_boxes)]

    def _lengths_for_count(self, n_boxes: int) -> tuple[Quantiles, ...] | None:
        if n_boxes not in self._fallback_lengths:
            same = [e.box_lengths for e in self.entries if e.box_lengths]
            exact = [q for q in same if len(q) == n_boxes]
            pool = exact or same
            self._fallback_lengths[n_boxes] = (
                tuple(
                    tuple(float(v) for v in np.mean([q[min(i, len(q) - 1)] for q in pool], axis=0))
                    for i in range(n_boxes)
                )
                if pool
                else None
            )
        return self._fallback_lengths[n_boxes]

    def lookup(self, query: str | int) -> TemplateEntry:
        """By slug, name, alias or Imgflip id, ignoring case and punctuation."""
        e = self._by_key.get(lookup_key(str(query)))
        if e is None:
            import difflib

            names = {lookup_key(x.name): x.slug for x in self.entries}
            close = difflib.get_close_matches(lookup_key(str(query)), list(names), n=3, cutoff=0.0)
            hint = ", ".join(names[c] for c in close)
            raise UsageError(f"unknown template {query!r}; closest: {hint}")
        return e

    @classmethod
    def build(
        cls,
        meta: Mapping[str, TemplateMeta],
        train: Iterable[Caption],
        all_captions: Iterable[Caption],
    ) -> TemplateTable:
        train = list(train)
        train_counts = Counter(c.template for c in train)
        lengths = _BoxLengths(train)
        box_counts: dict[str, Counter[int]] = {}
        for c in all_captions:
            box_counts.setdefault(c.template, Counter())[len(c.boxes)] += 1
        slugs = sorted(set(meta) | set(box_counts))
        slots = {s: i + 1 for i, s in enumerate(sorted(s for s in slugs if train_counts[s]))}
        entries = []
        for s in slugs:
            m = meta.get(s) or TemplateMeta(
                slug=s, name=s.replace("-", " ").title(), imgflip_id=None, aliases=()
            )
            if s in box_counts:
                boxes = box_counts[s].most_common(1)[0][0]
            else:
                boxes = KNOWN_BOX_COUNTS.get(s, DEFAULT_BOX_COUNT)
            entries.append(
                TemplateEntry(
                    slug=s,
                    name=m.name,
                    imgflip_id=m.imgflip_id,
                    aliases=m.aliases,
                    box_count=boxes,
                    slot=slots.get(s, GENERIC_SLOT),
                    train_captions=train_counts[s],
                    box_lengths=lengths.quantiles(s, boxes),
                )
            )
        return cls(entries)

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


class _BoxLengths:
    """Box-length quantiles from training captions, per template and per box count."""

    def __init__(self, train: Iterable[Caption]):
        self.by_template: dict[tuple[str, int], list[list[int]]] = {}
        self.by_count: dict[int, list[list[int]]] = {}
        for c in train:
            k = len(c.boxes)
            lens = [len(b) for b in c.boxes]
            self.by_template.setdefault((c.template, k), []).append(lens)
            self.by_count.setdefault(k, []).append(lens)

    def quantiles(self, slug: str, boxes: int) -> tuple[Quantiles, ...]:
        rows = self.by_template.get((slug, boxes), [])
        if len(rows) < MIN_LENGTH_SAMPLES:
            counts = [k for k, v in self.by_count.items() if len(v) >= MIN_LENGTH_SAMPLES]
            if not counts:
                return ()
            rows = self.by_count[min(counts, key=lambda k: (abs(k - boxes), -k))]
        table = np.array([r[:boxes] + [r[-1]] * (boxes - len(r)) for r in rows], dtype=np.float64)
        return tuple(
            tuple(round(float(v), 1) for v in np.quantile(table[:, i], LENGTH_LEVELS))
            for i in range(boxes)
        )
