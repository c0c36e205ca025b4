"""Caption cleaning as the imgflip article did it, with a count of what each rule dropped.

Rules, applied in this order (a caption is counted under the first rule it fails):
  normalise    per box: trim, collapse runs of whitespace to one space, lowercase (never drops)
  non_ascii    any character outside printable ASCII (32..126), control characters included
  pipe_in_box  a box contains `|`, the end-of-box marker
  length       the caption text `box|box|` is shorter than 10 or longer than 82 characters
  not_english  the language detector gives English a confidence below `min_english`
  duplicate    same template and same text as an earlier caption
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from memebot.caption_format import MAX_CHARS
from training.data import BOX_END, Caption

MIN_CHARS = 10
RULES = ("non_ascii", "pipe_in_box", "length", "not_english", "duplicate")
_WS = re.compile(r"\s+")
_PRINTABLE = frozenset(chr(c) for c in range(32, 127))

# Languages the English check competes against: the ones that show up in Imgflip captions.
# A closed set keeps the detector small and fast; it is a filter, not a classifier.
_COMPETING = [
    "ENGLISH",
    "SPANISH",
    "PORTUGUESE",
    "FRENCH",
    "GERMAN",
    "ITALIAN",
    "DUTCH",
    "INDONESIAN",
    "TAGALOG",
    "TURKISH",
    "POLISH",
    "ROMANIAN",
    "SWEDISH",
]

EnglishScorer = Callable[[Sequence[str]], list[float]]


def normalise_box(box: str) -> str:
    return _WS.sub(" ", box).strip().lower()


@dataclass
class CleaningReport:
    total: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))

    @property
    def kept(self) -> int:
        return self.total - sum(self.dropped.values())

    def table(self) -> str:
        lines = [f"{'rule':<14}{'dropped':>10}{'share':>9}"]
        for rule in RULES:
            n = self.dropped[rule]
            lines.append(f"{rule:<14}{n:>10,}{n / max(self.total, 1):>9.2%}")
        lines.append(f"{'kept':<14}{self.kept:>10,}{self.kept / max(self.total, 1):>9.2%}")
        lines.append(f"{'total':<14}{self.total:>10,}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {"total": self.total, "kept": self.kept, "dropped": dict(self.dropped)}


def lingua_english_scorer() -> EnglishScorer:
    """English confidence per text from lingua (Rust core, parallel over texts)."""
    from lingua import Language, LanguageDetectorBuilder

    langs = [getattr(Language, n) for n in _COMPETING]
    detector = LanguageDetectorBuilder.from_languages(*langs).build()

    def score(texts: Sequence[str]) -> list[float]:
        return list(detector.compute_language_confidence_in_parallel(list(texts), Language.ENGLISH))

    return score


def clean_captions(
    captions: Iterable[Caption],
    *,
    english_scorer: EnglishScorer | None = None,
    min_english: float = 0.05,
) -> tuple[list[Caption], CleaningReport]:
    """Apply every rule; returns the kept captions (original order) and the drop table.

    `english_scorer=None` uses lingua; tests pass their own to pin the behaviour of the rule.
    """
    report = CleaningReport()
    survivors: list[Caption] = []
    for cap in captions:
        report.total += 1
        boxes = tuple(normalise_box(b) for b in cap.boxes)
        if any(ch not in _PRINTABLE for b in boxes for ch in b):
            report.dropped["non_ascii"] += 1
            continue
        if any(BOX_END in b for b in boxes):
            report.dropped["pipe_in_box"] += 1
            continue
        c = Caption(template=cap.template, boxes=boxes)
        if not MIN_CHARS <= len(c.text) <= MAX_CHARS:
            report.dropped["length"] += 1
            continue
        survivors.append(c)

    scorer = english_scorer or lingua_english_scorer()
    # Detect on the words only: the markers would look like noise to the detector.
    scores = scorer([" ".join(c.boxes) for c in survivors]) if survivors else []
    kept: list[Caption] = []
    seen: set[tuple[str, str]] = set()
    for c, s in zip(survivors, scores, strict=True):
        if s < min_english:
            report.dropped["not_english"] += 1
            continue
        key = (c.template, c.text)
        if key in seen:
            report.dropped["duplicate"] += 1
            continue
        seen.add(key)
        kept.append(c)
    return kept, report
