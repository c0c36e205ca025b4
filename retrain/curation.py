"""Curation: rated generations -> training rows for a fine-tune, and held-out rows for the gate.

Pure functions over plain data (memebot.store.GenerationInfo); the caller supplies the base corpus,
the content filter and the cleaning function, so each rule is testable on its own.

Memes deleted on Discord are left out before any rule (not counted as rated).
Rules, in order (a caption is counted under the first one it fails):
  negative      net score < 0: never trained on as a positive. A stable hash sends
                `negative_heldout_share` of them to the gate's held-out negatives, the rest
                to `train_negatives` (the fine-tune's unlikelihood term, weight -score capped)
  low_score     net score below `min_score` (default 2)
  low_share     upvote share below `min_up_share` (default 0.7)
  filtered      the content filter flags it (the bot's `standard` level by default)
  cleaning      dropped by the training data's own cleaning rules (non-ASCII, length, ...)
  in_base       the same template and text is already in the base corpus
Kept captions get weight min(score, weight_cap). A stable hash of the caption sends
`heldout_share` of them to the gate's held-out set instead of training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from memebot.caption_format import CaptionRow, caption_text
from memebot.store.types import GenerationInfo

RULES = ("negative", "low_score", "low_share", "filtered", "cleaning", "in_base")


@dataclass(frozen=True)
class CurationRules:
    min_score: int = 2  # net score (up - down) to keep a caption
    min_up_share: float = 0.7  # and this share of its votes up
    weight_cap: int = 5  # a caption's weight is its net score, capped
    heldout_share: float = 0.2  # of kept captions, for the gate only (never trained on)
    # Of downvoted captions, for the gate only; the rest train the unlikelihood term.
    # Larger than heldout_share: downvoted captions are plentiful, upvoted ones scarce.
    negative_heldout_share: float = 0.5


@dataclass(frozen=True)
class CuratedRow(CaptionRow):
    template: str
    boxes: tuple[str, ...]
    weight: int  # how many copies training sees (1 for held-out rows)
    score: int
    up: int
    down: int
    generation_id: int
    kind: str  # positive | negative
    split: str  # train | heldout


@dataclass
class Curated:
    train: list[CuratedRow] = field(default_factory=list)  # positives to fine-tune on
    heldout: list[CuratedRow] = field(default_factory=list)  # positives for the gate
    negatives: list[CuratedRow] = field(default_factory=list)  # downvoted: the gate's negatives
    # Downvoted, not held out: the fine-tune's unlikelihood rows (never seen by the gate).
    train_negatives: list[CuratedRow] = field(default_factory=list)
    rated: int = 0  # generations with at least one vote
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))

    @property
    def rows(self) -> list[CuratedRow]:
        return [*self.train, *self.heldout, *self.negatives, *self.train_negatives]

    def counts(self) -> dict[str, int]:
        return {
            "rated": self.rated,
            "train": len(self.train),
            "train_weight": sum(r.weight for r in self.train),
            "heldout": len(self.heldout),
            "negatives": len(self.negatives),
            "train_negatives": len(self.train_negatives),
            **{f"dropped_{k}": v for k, v in self.dropped.items()},
        }

    def table(self) -> str:
        lines = [
            f"{'rule':<12}{'dropped':>9}",
            *(f"{k:<12}{v:>9,}" for k, v in self.dropped.items()),
        ]
        lines += [
            f"{'rated':<12}{self.rated:>9,}",
            f"{'train':<12}{len(self.train):>9,}  (weight {sum(r.weight for r in self.train):,})",
            f"{'heldout':<12}{len(self.heldout):>9,}",
            f"{'negatives':<12}{len(self.negatives):>9,}  (kept for the gate)",
            f"{'train_neg':<12}{len(self.train_negatives):>9,}  (unlikelihood in fine-tuning)",
        ]
        return "\n".join(lines)


# (template, boxes) -> the cleaned boxes, or None when the training data's cleaning drops it.
Cleaner = Callable[[Sequence[tuple[str, tuple[str, ...]]]], list[tuple[str, ...] | None]]


def vote_rule(g: GenerationInfo, rules: CurationRules) -> str | None:
    """The first vote rule `g` fails (negative, low_score, low_share), or None."""
    if g.score < 0:
        return "negative"
    if g.score < rules.min_score:
        return "low_score"
    if (g.upvote_share or 0.0) < rules.min_up_share:
        return "low_share"
    return None


def weight_of(score: int, rules: CurationRules) -> int:
    return max(1, min(score, rules.weight_cap))


def is_heldout(template: str, text: str, share: float) -> bool:
    """Stable across runs and machines: the same caption is always on the same side."""
    h = int.from_bytes(hashlib.sha1(f"heldout\t{template}\t{text}".encode()).digest()[:8], "big")
    return (h % 10_000) < share * 10_000


def curate(
    generations: Iterable[GenerationInfo],
    *,
    rules: CurationRules = CurationRules(),
    blocked: Callable[[str], bool] = lambda _text: False,
    clean: Cleaner | None = None,
    base: Collection[tuple[str, str]] = (),
) -> Curated:
    """Applies the rules (module docstring) to rated generations.

    `blocked(text)` is the content filter; `clean` the training data's cleaning (None: boxes
    kept as they are); `base` the (template, "box|box|") pairs of the base corpus, cleaned.
    Two generations with the same caption count once (the better-rated one).
    """
    out = Curated()
    candidates: list[GenerationInfo] = []
    negatives: list[CuratedRow] = []
    for g in generations:
        if g.up + g.down == 0 or g.deleted_at is not None:  # a deleted meme teaches nothing
            continue
        out.rated += 1
        why = vote_rule(g, rules)
        if why == "negative":
            text = caption_text(g.boxes)
            if is_heldout(g.template, text, rules.negative_heldout_share):
                negatives.append(_row(g, g.boxes, 1, "negative", "heldout"))
            else:
                negatives.append(_row(g, g.boxes, weight_of(-g.score, rules), "negative", "train"))
        if why is not None:
            out.dropped[why] += 1
            continue
        candidates.append(g)
    for r in _dedupe(negatives):
        (out.negatives if r.split == "heldout" else out.train_negatives).append(r)

    kept = []
    for g in candidates:
        if blocked(" ".join(g.boxes)):
            out.dropped["filtered"] += 1
        else:
            kept.append(g)
    cleaned = clean([(g.template, tuple(g.boxes)) for g in kept]) if clean else None
    positives = []
    for i, g in enumerate(kept):
        boxes = tuple(g.boxes) if cleaned is None else cleaned[i]
        if boxes is None:
            out.dropped["cleaning"] += 1
            continue
        text = caption_text(boxes)
        if (g.template, text) in base:
            out.dropped["in_base"] += 1
            continue
        split = "heldout" if is_heldout(g.template, text, rules.heldout_share) else "train"
        weight = weight_of(g.score, rules) if split == "train" else 1
        positives.append(_row(g, boxes, weight, "positive", split))
    for r in _dedupe(positives):
        (out.train if r.split == "train" else out.heldout).append(r)
    return out


def _row(g: GenerationInfo, boxes: Sequence[str], weight: int, kind: str, split: str) -> CuratedRow:
    return CuratedRow(
        template=g.template,
        boxes=tuple(boxes),
        weight=weight,
        score=g.score,
        up=g.up,
        down=g.down,
        generation_id=g.id,
        kind=kind,
        split=split,
    )


def _dedupe(rows: list[CuratedRow]) -> list[CuratedRow]:
    """One row per (template, text): the highest |score| (a caption generated twice)."""
    best: dict[tuple[str, str], CuratedRow] = {}
    for r in rows:
        key = (r.template, r.text)
        if key not in best or abs(r.score) > abs(best[key].score):
            best[key] = r
    return sorted(best.values(), key=lambda r: r.generation_id)


def write_jsonl(rows: Iterable[CuratedRow], path: Path) -> int:
    """One JSON object per line (what `memebot train --extra-data` and `eval --data` read);
    written to a temp file and renamed, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r.to_json()) + "\n")
                n += 1
        tmp.replace(path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)  # e.g. a full disk: no half file left behind
        if isinstance(e, OSError) and e.filename is None:  # a failed write names no file
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    return n
