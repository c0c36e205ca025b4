"""One way to find a template by name, shared by the artifact's template table and the engine's
catalog: keys compare without case or punctuation ("Y U No!" == "y-u-no"); a query that is no
key finds the one item some key starts with ("drake"); anything else is `TemplateNotFound`,
naming the closest few.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from memebot.errors import TemplateNotFound

T = TypeVar("T")


def lookup_key(s: str) -> str:
    """Template names compare without case or punctuation: "Y U No!" == "y-u-no"."""
    return re.sub(r"[^a-z0-9]", "", s.lower())


class NameIndex(Generic[T]):
    """Items by every name they answer to; `label` names an item in errors (its slug)."""

    def __init__(self, items: Iterable[tuple[T, Iterable[str]]], label: Callable[[T], str]):
        self._keys: dict[str, T] = {}
        self._labels: dict[str, str] = {}  # key -> label of its item, for `closest`
        self.label = label
        for item, names in items:
            for name in names:
                k = lookup_key(name)
                if k and k not in self._keys:
                    self._keys[k] = item
                    self._labels[k] = label(item)

    def get(self, query: str | int) -> T | None:
        """The exact key, else the one item that some key starts with; None otherwise."""
        q = lookup_key(str(query))
        if not q:
            return None
        if q in self._keys:
            return self._keys[q]
        hits = {id(t): t for k, t in self._keys.items() if k.startswith(q)}
        return next(iter(hits.values())) if len(hits) == 1 else None

    def lookup(self, query: str | int) -> T:
        item = self.get(query)
        if item is None:
            raise TemplateNotFound(str(query), self.closest(str(query)))
        return item

    def closest(self, query: str, n: int = 3) -> list[str]:
        """Labels of the `n` items with the most similar key (each item once)."""
        q = lookup_key(query)
        best: dict[str, float] = {}
        for k, lab in self._labels.items():
            score = difflib.SequenceMatcher(None, q, k).ratio()
            best[lab] = max(best.get(lab, 0.0), score)
        return [lab for lab, _ in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
