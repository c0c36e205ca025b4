"""The training data's own rules applied to captions from elsewhere (the community's rated
captions, before a fine-tune): what cleaning makes of each one alone, and whether the cleaned
base corpus already holds it. `memebot data check-captions` runs it for the retrain worker,
which imports no training code."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from memebot.errors import DataError
from training.cleaning import clean_captions, lingua_english_scorer
from training.data import Caption
from training.prepare import prepare


@dataclass(frozen=True, slots=True)
class Checked:
    template: str
    boxes: tuple[str, ...] | None  # as cleaning leaves them; None: a cleaning rule drops it
    in_base: bool  # the cleaned caption is in the base corpus (same template and text)


def check_captions(
    items: Sequence[tuple[str, tuple[str, ...]]], data: Path, cache_dir: Path | None
) -> list[Checked]:
    """Each (template, boxes) cleaned alone (duplicates among them are the caller's business,
    not cleaning's), then looked up in the cleaned corpus at `data`."""
    scorer = functools.cache(lingua_english_scorer)
    base = {(c.template, c.text) for c in prepare(data, cache_dir=cache_dir).captions("all")}
    out = []
    for template, boxes in items:
        kept, _ = clean_captions([Caption(template, boxes)], english_scorer=scorer())
        if not kept:
            out.append(Checked(template, None, False))
            continue
        out.append(Checked(template, kept[0].boxes, (template, kept[0].text) in base))
    return out


def read_items(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """JSON lines with `template` (a slug) and `boxes` (a list of strings)."""
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            template, boxes = row["template"], row["boxes"]
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}:{n}: expected {{template, boxes}} ({e})") from e
        if not isinstance(template, str) or not (
            isinstance(boxes, list) and all(isinstance(b, str) for b in boxes)
        ):
            raise DataError(f"{path}:{n}: template must be a string, boxes a list of strings")
        items.append((template, tuple(boxes)))
    return items


def write_checked(checked: Sequence[Checked], path: Path) -> None:
    """One JSON object per line, written to a temp file and renamed (never half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for c in checked:
                boxes = list(c.boxes) if c.boxes is not None else None
                f.write(json.dumps({"template": c.template, "boxes": boxes, "in_base": c.in_base}))
                f.write("\n")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
