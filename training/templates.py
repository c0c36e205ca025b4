"""Building the artifact's template table from captions: slots, box counts and box-length
quantiles (memebot/artifact/templates.py holds the table itself)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from memebot.artifact.templates import (
    GENERIC_SLOT,
    LENGTH_LEVELS,
    Quantiles,
    TemplateEntry,
    TemplateTable,
)
from training.data import Caption, TemplateMeta

DEFAULT_BOX_COUNT = 2
# Fewer captions than MIN_LENGTH_SAMPLES for a template fall back to every training caption
# with the same number of boxes.
MIN_LENGTH_SAMPLES = 20
# Box counts of the templates that have no captions in the shared data, read off their
# Imgflip pages and memegen layouts (db.yml has 3 boxes...). Templates with captions use
# the most common box count of their captions instead.
KNOWN_BOX_COUNTS = {
    "distracted-boyfriend": 3,
    "expanding-brain": 4,
    "boardroom-meeting-suggestion": 4,
    "who-killed-hannibal": 3,
}


def build_table(
    meta: Mapping[str, TemplateMeta],
    train: Iterable[Caption],
    all_captions: Iterable[Caption],
) -> TemplateTable:
    """The table of every template in `meta` or the captions: slots for those with training
    captions, the most common box count, box-length quantiles."""
    train = list(train)
    train_counts = Counter(c.template for c in train)
    lengths = BoxLengths(train)
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
    return TemplateTable(entries)


class BoxLengths:
    """Box-length quantiles from training captions, per template and per box count: what
    build_table puts in the artifact (bench/unseen_lengths.py measures its fallback)."""

    def __init__(self, train: Iterable[Caption] = ()):
        # the box lengths of each caption, by (template, box count) and by box count
        self.by_template: dict[tuple[str, int], list[list[int]]] = {}
        self.by_count: dict[int, list[list[int]]] = {}
        for c in train:
            self.add(c.template, [len(b) for b in c.boxes])

    @classmethod
    def from_rows(cls, rows: Mapping[tuple[str, int], Iterable[list[int]]]) -> BoxLengths:
        """From captions' box lengths by (template, box count), as `by_template` holds them."""
        out = cls()
        for (slug, _), lens in rows.items():
            for r in lens:
                out.add(slug, r)
        return out

    def add(self, template: str, lengths: list[int]) -> None:
        """One caption of `template` whose boxes are `lengths` characters long."""
        self.by_template.setdefault((template, len(lengths)), []).append(lengths)
        self.by_count.setdefault(len(lengths), []).append(lengths)

    def quantiles(self, slug: str, boxes: int) -> tuple[Quantiles, ...]:
        """The template's own quantiles at `boxes` boxes with MIN_LENGTH_SAMPLES captions of
        that count, else the fallback."""
        rows = self.by_template.get((slug, boxes), [])
        if len(rows) < MIN_LENGTH_SAMPLES:
            return self.fallback(boxes)
        return _quantiles(rows, boxes)

    def fallback(self, boxes: int) -> tuple[Quantiles, ...]:
        """Training's lengths for a template with too few captions of its own: the quantiles
        over every caption with `boxes` boxes (or the nearest count with MIN_LENGTH_SAMPLES
        captions, the larger on a tie); empty with none."""
        counts = [k for k, v in self.by_count.items() if len(v) >= MIN_LENGTH_SAMPLES]
        if not counts:
            return ()
        return _quantiles(self.by_count[min(counts, key=lambda k: (abs(k - boxes), -k))], boxes)


def _quantiles(rows: list[list[int]], boxes: int) -> tuple[Quantiles, ...]:
    """Per box, the LENGTH_LEVELS quantiles of `rows` (a shorter row's last box standing in for
    the boxes past it, a longer one's extra boxes left out)."""
    table = np.array([r[:boxes] + [r[-1]] * (boxes - len(r)) for r in rows], dtype=np.float64)
    return tuple(
        tuple(round(float(v), 1) for v in np.quantile(table[:, i], LENGTH_LEVELS))
        for i in range(boxes)
    )
