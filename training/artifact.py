"""A model artifact is one directory; it is written whole (temp dir + rename) or not at all.

    model.keras      Keras model file (weights; the graph is rebuilt from meta.json's config)
    vocab.json       character vocabulary
    templates.json   template table (slots, box counts, aliases)
    meta.json        arch, config, data fingerprint, metrics, creation time, command, sha256s
    history.json, curves.png   training curves (not needed to load)

The loader checks every file's sha256 against meta.json and refuses on any mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memebot.errors import ArtifactError, UsageError
from training.jsonio import write_json
from training.models import CONFIGS
from training.templates import TemplateTable
from training.vocab import Vocab

FORMAT_VERSION = 1
CHECKED_FILES = ("model.keras", "vocab.json", "templates.json")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ArtifactMeta:
    arch: str
    config: dict[str, Any]
    data_fingerprint: str
    metrics: dict[str, Any]
    created: str
    command: str
    version: str  # e.g. "char-gru-20261122T0301Z-8e67a9fe"
    files: dict[str, str]
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def config_from_dict(arch: str, obj: dict[str, Any], source: Path | str):  # -> config dataclass
    cls = CONFIGS.get(arch)
    if cls is None:
        raise ArtifactError(f"{source}: unknown architecture {arch!r}")
    names = {f.name for f in fields(cls)}
    unknown = set(obj) - names
    if unknown:
        raise ArtifactError(f"{source}: config has unknown fields {sorted(unknown)}")
    return cls(**obj)


def make_version(arch: str, fingerprint: str, when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    return f"{arch}-{when.strftime('%Y%m%dT%H%M%SZ')}-{fingerprint[:8]}"


def write_artifact(
    out: Path,
    *,
    model,  # keras.Model
    vocab: Vocab,
    templates: TemplateTable,
    meta: ArtifactMeta,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write into a sibling temp dir, then rename to `out`: readers never see half a model."""
    if out.exists():
        raise UsageError(f"{out}: output directory already exists (--out)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        model.save(tmp / "model.keras")
        vocab.save(tmp / "vocab.json")
        templates.save(tmp / "templates.json")
        for name, src in (extra_files or {}).items():
            if src.is_file():
                shutil.copyfile(src, tmp / name)
        meta.files = {name: sha256_file(tmp / name) for name in CHECKED_FILES}
        write_json(tmp / "meta.json", meta.to_json())
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_meta(path: Path) -> ArtifactMeta:
    """Parse and verify an artifact directory's meta.json and checksums (no TensorFlow)."""
    if not path.is_dir():
        raise ArtifactError(f"{path}: not a model artifact directory (no such directory)")
    meta_path = path / "meta.json"
    try:
        obj = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ArtifactError(f"{meta_path}: missing; {path} is not a complete model artifact") from e
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{meta_path}: corrupt ({e})") from e
    if not isinstance(obj, dict):
        raise ArtifactError(f"{meta_path}: corrupt (not a JSON object)")
    if obj.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{meta_path}: format_version {obj.get('format_version')!r}, "
            f"this memebot reads {FORMAT_VERSION}"
        )
    try:
        meta = ArtifactMeta(**obj)
    except TypeError as e:
        raise ArtifactError(f"{meta_path}: corrupt ({e})") from e
    if meta.arch not in CONFIGS:
        raise ArtifactError(f"{meta_path}: unknown architecture {meta.arch!r}")
    for name in CHECKED_FILES:
        f = path / name
        if not f.is_file():
            raise ArtifactError(f"{f}: missing from the artifact")
        if sha256_file(f) != meta.files.get(name):
            raise ArtifactError(f"{f}: checksum mismatch, the artifact is corrupt or was modified")
    return meta
