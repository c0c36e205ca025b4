"""Readers for caption data: the ImgFlip575K layout and flat `[template_id, "BOX|BOX|"]` rows.

A `Caption` keeps the raw boxes; cleaning (see `cleaning.py`) happens later so that the
per-rule drop table can be printed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from memebot.caption_format import BOX_END, caption_text
from memebot.errors import DataError

__all__ = ["BOX_END", "Caption", "TemplateMeta", "read_dataset"]


@dataclass(frozen=True, slots=True)
class Caption:
    template: str  # slug, e.g. "success-kid"
    boxes: tuple[str, ...]

    @property
    def text(self) -> str:
        """What the models predict: every box followed by the end-of-box marker."""
        return caption_text(self.boxes)


@dataclass(frozen=True, slots=True)
class TemplateMeta:
    slug: str
    name: str
    imgflip_id: int | None
    aliases: tuple[str, ...]


def slugify(name: str) -> str:
    """`Distracted-Boyfriend` / `Distracted Boyfriend` -> `distracted-boyfriend`."""
    s = re.sub(r"[^a-z0-9]+", "-", name.lower())
    return s.strip("-")


def _load_json(path: Path) -> object:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from e


def read_imgflip_templates(root: Path) -> dict[str, TemplateMeta]:
    """`templates/<Name>.json` of an ImgFlip575K directory; missing folder -> empty table."""
    out: dict[str, TemplateMeta] = {}
    tdir = root / "templates"
    if not tdir.is_dir():
        return out
    for path in sorted(tdir.glob("*.json")):
        obj = _load_json(path)
        if not isinstance(obj, dict):
            raise DataError(f"{path}: expected a JSON object")
        title = str(obj.get("title") or path.stem.replace("-", " "))
        title = re.sub(r"\s+Meme Template$", "", title).strip()
        raw_id = obj.get("template_id")
        try:
            imgflip_id = int(str(raw_id)) if raw_id not in (None, "") else None
        except ValueError as e:
            raise DataError(f"{path}: template_id {raw_id!r} is not a number") from e
        aliases = tuple(
            a.strip() for a in str(obj.get("alternative_names") or "").split(",") if a.strip()
        )
        slug = slugify(path.stem)
        out[slug] = TemplateMeta(slug=slug, name=title, imgflip_id=imgflip_id, aliases=aliases)
    return out


def iter_imgflip_memes(root: Path) -> Iterator[Caption]:
    """Every caption in `memes/*.json` of an ImgFlip575K directory, boxes as scraped."""
    mdir = root / "memes"
    files = sorted(mdir.glob("*.json")) if mdir.is_dir() else []
    if not files:
        raise DataError(f"{mdir}: no memes/*.json files (expected the ImgFlip575K layout)")
    for path in files:
        obj = _load_json(path)
        if not isinstance(obj, list):
            raise DataError(f"{path}: expected a JSON list of memes")
        slug = slugify(path.stem)
        for i, meme in enumerate(obj):
            boxes = meme.get("boxes") if isinstance(meme, dict) else None
            if not isinstance(boxes, list) or not all(isinstance(b, str) for b in boxes):
                raise DataError(f"{path}: meme #{i} has no list of string 'boxes'")
            yield Caption(template=slug, boxes=tuple(boxes))


def read_flat_rows(path: Path) -> tuple[list[Caption], dict[str, TemplateMeta]]:
    """Rows `[template_id, "BOX|BOX|"]`: one JSON list of rows, or one row per line (JSONL)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    try:
        rows = json.loads(raw)
        if isinstance(rows, dict):  # JSON lines with a single object
            rows = [rows]
        if not isinstance(rows, list) or (rows and not isinstance(rows[0], list | dict)):
            raise DataError(f"{path}: expected a JSON list of [template_id, text] rows")
    except json.JSONDecodeError:
        rows = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not a JSON row ({e.msg})") from e
    captions: list[Caption] = []
    templates: dict[str, TemplateMeta] = {}
    for n, row in enumerate(rows, 1):
        if isinstance(row, dict):  # a curated row ({"template": slug, "boxes": [...]}, ...)
            captions.append(_caption_object(path, n, row))
            continue
        if not (isinstance(row, list) and len(row) == 2 and isinstance(row[1], str)):
            raise DataError(f"{path}: row {n} is not [template_id, 'BOX|BOX|']")
        try:
            tid = int(str(row[0]))
        except ValueError as e:
            raise DataError(f"{path}: row {n} template_id {row[0]!r} is not a number") from e
        slug = f"imgflip-{tid}"
        templates.setdefault(
            slug, TemplateMeta(slug=slug, name=f"Imgflip {tid}", imgflip_id=tid, aliases=())
        )
        text = row[1][:-1] if row[1].endswith(BOX_END) else row[1]
        captions.append(Caption(template=slug, boxes=tuple(text.split(BOX_END))))
    return captions, templates


def _caption_object(path: Path, n: int, row: dict[str, object]) -> Caption:
    template, boxes = row.get("template"), row.get("boxes")
    if not isinstance(template, str) or not template:
        raise DataError(f"{path}: row {n} has no 'template' slug")
    if not isinstance(boxes, list) or not all(isinstance(b, str) for b in boxes):
        raise DataError(f"{path}: row {n} has no list of string 'boxes'")
    return Caption(template=template, boxes=tuple(boxes))


def read_weighted(path: Path, *, kind: str = "positive") -> list[tuple[Caption, float]]:
    """The training rows of a curated JSON-lines file (`memebot data export-ratings`) with
    their "weight" (default 1). `kind="positive"`: what `memebot train --extra-data` adds to
    the training split; `kind="negative"`: the downvoted rows `--negative-data` trains the
    unlikelihood term on. Rows of the other kind, and rows marked "split": "heldout" (the
    gate's), are never trained on. A JSON list of rows (no kinds) is all positive."""
    captions, _ = read_flat_rows(path)
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if len(lines) != len(captions):  # a JSON list of rows, not JSON lines: no weights
        return [(c, 1.0) for c in captions] if kind == "positive" else []
    out: list[tuple[Caption, float]] = []
    for n, (caption, line) in enumerate(zip(captions, lines, strict=True), 1):
        obj = json.loads(line)
        if not isinstance(obj, dict):
            if kind == "positive":
                out.append((caption, 1.0))
            continue
        if obj.get("kind", "positive") != kind or obj.get("split", "train") != "train":
            continue
        w = obj.get("weight", 1)
        if isinstance(w, bool) or not isinstance(w, int | float) or not w >= 0:
            raise DataError(f"{path}: row {n} weight {w!r} is not a number >= 0")
        out.append((caption, float(w)))
    return out


def read_dataset(path: Path) -> tuple[list[Caption], dict[str, TemplateMeta]]:
    """Captions and template metadata from a directory (ImgFlip575K) or a rows file."""
    if not path.exists():
        raise DataError(f"{path}: no such file or directory (--data)")
    if path.is_dir():
        return list(iter_imgflip_memes(path)), read_imgflip_templates(path)
    return read_flat_rows(path)
