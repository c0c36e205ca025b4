"""Data preparation: read, clean, split, build vocabulary and template table; print statistics.

The cleaned corpus is cached by a fingerprint of the raw files, so only the first run over a
dataset pays for language detection (about a minute for the shared data on 2 cores).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from memebot.artifact.jsonio import write_json
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from memebot.errors import DataError
from training.cleaning import CleaningReport, clean_captions
from training.data import Caption, TemplateMeta, read_dataset
from training.templates import build_table

SPLITS = ("train", "val", "test")
CACHE_VERSION = 1


def split_of(c: Caption) -> str:
    """Deterministic split by caption hash: 90% train, 5% val, 5% test."""
    h = int.from_bytes(hashlib.sha1(f"{c.template}\t{c.text}".encode()).digest()[:8], "big")
    b = h % 100
    return "train" if b < 90 else "val" if b < 95 else "test"


def fingerprint(path: Path) -> str:
    """sha256 over every raw input file (names and bytes), so edits invalidate the cache."""
    h = hashlib.sha256()
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@dataclass
class Prepared:
    splits: dict[str, list[Caption]]
    templates_meta: dict[str, TemplateMeta]
    report: CleaningReport
    fingerprint: str
    source: Path

    def captions(self, split: str) -> list[Caption]:
        if split == "all":
            return [c for s in SPLITS for c in self.splits[s]]
        return self.splits[split]

    def build_vocab(self) -> Vocab:
        return Vocab.build(c.text for c in self.splits["train"])

    def build_templates(self, withheld: frozenset[str] = frozenset()) -> TemplateTable:
        """The template table; `withheld` templates get no slot and no lengths of their own,
        only their box count (what a template's catalog entry gives without captions)."""
        train = [c for c in self.splits["train"] if c.template not in withheld]
        return build_table(self.templates_meta, train, self.captions("all"))

    def statistics(self) -> str:
        lines = [
            f"data: {self.source}  fingerprint {self.fingerprint[:12]}",
            "",
            self.report.table(),
            "",
        ]
        for s in SPLITS:
            caps = self.splits[s]
            chars = sum(len(c.text) for c in caps)
            lines.append(f"{s:<6}{len(caps):>9,} captions {chars:>12,} chars")
        train = self.splits["train"]
        if train:
            lens = [len(c.text) for c in train]
            lines.append(
                f"caption length: mean {statistics.mean(lens):.1f}, "
                f"median {statistics.median(lens):.0f}, "
                f"max {max(lens)}"
            )
            per_t = Counter(c.template for c in train)
            lines.append(
                f"templates with training captions: {len(per_t)}; most: "
                + ", ".join(f"{t} {n:,}" for t, n in per_t.most_common(3))
            )
            vocab = self.build_vocab()
            lines.append(
                f"vocabulary: {vocab.size} ids; most frequent: {''.join(vocab.chars[:30])!r}"
            )
        return "\n".join(lines)


def _cache_path(cache_dir: Path, fp: str) -> Path:
    return cache_dir / "prepared" / f"{fp[:32]}.v{CACHE_VERSION}.json"


def prepare(path: Path, *, cache_dir: Path | None = None) -> Prepared:
    """Read + clean + split `path` (ImgFlip575K dir or rows file), using the cache if present."""
    if not path.exists():
        raise DataError(f"{path}: no such file or directory (--data)")
    fp = fingerprint(path)
    cached = _cache_path(cache_dir, fp) if cache_dir else None
    if cached and cached.is_file():
        try:
            obj = json.loads(cached.read_text(encoding="utf-8"))
            cached_splits = {s: [Caption(t, tuple(b)) for t, b in obj["splits"][s]] for s in SPLITS}
            meta = {
                k: TemplateMeta(k, v["name"], v["imgflip_id"], tuple(v["aliases"]))
                for k, v in obj["templates"].items()
            }
            report = CleaningReport(total=obj["report"]["total"], dropped=obj["report"]["dropped"])
            return Prepared(cached_splits, meta, report, fp, path)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a stale or broken cache is rebuilt below
    raw, meta = read_dataset(path)
    kept, report = clean_captions(raw)
    if not kept:
        raise DataError(f"{path}: no captions left after cleaning ({report.total} read)")
    splits: dict[str, list[Caption]] = {s: [] for s in SPLITS}
    for c in kept:
        splits[split_of(c)].append(c)
    prep = Prepared(splits, meta, report, fp, path)
    if cached:
        _write_json_atomic(
            cached,
            {
                "splits": {s: [[c.template, list(c.boxes)] for c in splits[s]] for s in SPLITS},
                "templates": {
                    k: {"name": m.name, "imgflip_id": m.imgflip_id, "aliases": list(m.aliases)}
                    for k, m in meta.items()
                },
                "report": report.to_dict(),
            },
        )
    return prep


def _write_json_atomic(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def write_prepared(prep: Prepared, out: Path) -> None:
    """`memebot data prepare --out`: splits as JSONL, vocab, template table, statistics."""
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: output directory exists and is not empty (--out)")
    out.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        with (out / f"{s}.jsonl").open("w", encoding="utf-8") as f:
            for c in prep.splits[s]:
                f.write(json.dumps({"template": c.template, "boxes": list(c.boxes)}) + "\n")
    prep.build_vocab().save(out / "vocab.json")
    prep.build_templates().save(out / "templates.json")
    write_json(
        out / "stats.json",
        {
            "fingerprint": prep.fingerprint,
            "cleaning": prep.report.to_dict(),
            "splits": {s: len(prep.splits[s]) for s in SPLITS},
        },
    )
