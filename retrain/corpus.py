"""What curation asks of training, through `memebot data check-captions` (a child process: the
worker imports no training code): what the training data's cleaning makes of each rated
caption, and which are already in the base corpus. Also the content filter curation applies
(the bot's `standard` level, memebot/filtering.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from memebot.filtering import blocked
from memebot.settings import Settings
from memebot.store import GenerationInfo
from retrain.subprocesses import RunFailed, Subprocess

Item = tuple[str, tuple[str, ...]]  # (template slug, boxes)


@dataclass
class CaptionChecks:
    """Training's verdicts on a set of captions, in the shapes curation takes."""

    cleaned: dict[Item, tuple[str, ...] | None] = field(default_factory=dict)
    base: set[tuple[str, str]] = field(default_factory=set)  # (template, "box|box|") in corpus

    def clean(self, items: Sequence[Item]) -> list[tuple[str, ...] | None]:
        return [self.cleaned[item] for item in items]


def check_captions(
    generations: Iterable[GenerationInfo], settings: Settings, proc: Subprocess, workdir: Path
) -> CaptionChecks:
    """`memebot data check-captions` on every rated generation's caption (files in `workdir`)."""
    items = list(dict.fromkeys((g.template, tuple(g.boxes)) for g in generations if g.up + g.down))
    checks = CaptionChecks()
    if not items:
        return checks
    workdir.mkdir(parents=True, exist_ok=True)
    asked, answered = workdir / "rated-captions.jsonl", workdir / "checked-captions.jsonl"
    asked.write_text(
        "".join(json.dumps({"template": t, "boxes": list(b)}) + "\n" for t, b in items),
        encoding="utf-8",
    )
    data = str(settings.data_dir)
    proc.run(["data", "check-captions", str(asked), "--out", str(answered), "--data", data])
    rows = [json.loads(line) for line in answered.read_text(encoding="utf-8").splitlines()]
    if len(rows) != len(items):
        raise RunFailed(f"memebot data check-captions answered {len(rows)} of {len(items)} rows")
    for item, row in zip(items, rows, strict=True):
        boxes = tuple(row["boxes"]) if row["boxes"] is not None else None
        checks.cleaned[item] = boxes
        if boxes is not None and row["in_base"]:
            checks.base.add((item[0], "".join(b + "|" for b in boxes)))
    return checks


def content_filter(level: str = "standard") -> Callable[[str], bool]:
    """The bot's content filter at `level`, as curation's `blocked`."""
    return lambda text: bool(blocked(text, level))
