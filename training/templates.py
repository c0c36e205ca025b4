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

from memebot.errors import ArtifactError, UsageError
from training.data import Caption, TemplateMeta
from training.jsonio import read_json, write_json

GENERIC_SLOT = 0
DEFAULT_BOX_COUNT = 2
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
        train_counts = Counter(c.template for c in train)
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
            return cls(TemplateEntry(**{**e, "aliases": tuple(e["aliases"])}) for e in obj)
        except (TypeError, KeyError) as e:
            raise ArtifactError(f"{source}: malformed template entry ({e})") from e

    def save(self, path: Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> TemplateTable:
        return cls.from_json(read_json(path, "template table"), path)
