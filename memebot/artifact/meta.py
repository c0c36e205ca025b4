"""meta.json, checksums and writing an artifact whole (temp dir + rename) or not at all.

    weights.npz      float32 weights by Keras variable path (what serving reads; no TensorFlow)
    model.keras      the same weights as a Keras file (training, evaluation, fine-tuning, seed-cnn)
    vocab.json       character vocabulary
    templates.json   template table (slots, box counts, aliases, box-length quantiles)
    meta.json        arch, config, data fingerprint, metrics, creation time, command, sha256s
    history.json, curves.png   training curves (not needed to load)

`read_meta` checks meta.json against its schema and every listed file's sha256, and refuses on
any mismatch with an ArtifactError naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from memebot.artifact.configs import CONFIGS, ModelConfig, config_from_dict
from memebot.artifact.jsonio import write_json
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from memebot.artifact.weights import WEIGHTS_FILE, save_weights
from memebot.errors import ArtifactError, UsageError

FORMAT_VERSION = 1
REQUIRED_FILES = ("vocab.json", "templates.json")
MODEL_FILES = ("model.keras", WEIGHTS_FILE)  # an artifact has at least one
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
    files: dict[str, str]  # file name -> sha256
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def model_config(self, source: object = "meta.json") -> ModelConfig:
        return config_from_dict(self.arch, self.config, source)

    @classmethod
    def from_json(cls, obj: object, source: Path | str = "meta.json") -> ArtifactMeta:
        """The schema, field by field: a wrong type or value names the field."""
        if not isinstance(obj, dict):
            raise ArtifactError(f"{source}: corrupt (not a JSON object)")
        if obj.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"{source}: format_version {obj.get('format_version')!r}, "
                f"this memebot reads {FORMAT_VERSION}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ArtifactError(f"{source}: unknown fields {unknown}")
        kinds: dict[str, type | tuple[type, ...]] = {
            "arch": str,
            "config": dict,
            "data_fingerprint": str,
            "metrics": dict,
            "created": str,
            "command": str,
            "version": str,
            "files": dict,
            "extra": (dict, type(None)),
        }
        for name, kind in kinds.items():
            if name not in obj and name != "extra":
                raise ArtifactError(f"{source}: field {name!r} is missing")
            if not isinstance(obj.get(name), kind):
                want = "an object" if kind in (dict, (dict, type(None))) else "a string"
                raise ArtifactError(f"{source}: field {name!r} must be {want}, got {obj[name]!r}")
        if obj["arch"] not in CONFIGS:
            raise ArtifactError(f"{source}: unknown architecture {obj['arch']!r}")
        if not obj["version"].strip():
            raise ArtifactError(f"{source}: field 'version' is empty")
        files = obj["files"]
        for name, digest in files.items():
            if "/" in name or "\\" in name or name in ("", ".", ".."):
                raise ArtifactError(f"{source}: files: {name!r} is not a file name")
            if not isinstance(digest, str) or not _SHA256.match(digest):
                raise ArtifactError(f"{source}: files[{name!r}] is not a sha256 hex digest")
        for name in REQUIRED_FILES:
            if name not in files:
                raise ArtifactError(f"{source}: files must list {name}")
        if not any(n in files for n in MODEL_FILES):
            raise ArtifactError(f"{source}: files must list {' or '.join(MODEL_FILES)}")
        meta = cls(**obj)
        meta.model_config(source)  # types and ranges of the config
        return meta


def make_version(arch: str, fingerprint: str, when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    return f"{arch}-{when.strftime('%Y%m%dT%H%M%SZ')}-{fingerprint[:8]}"


def write_artifact(
    out: Path,
    *,
    weights: Mapping[str, np.ndarray],
    vocab: Vocab,
    templates: TemplateTable,
    meta: ArtifactMeta,
    save_keras: Callable[[Path], None] | None = None,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write into a sibling temp dir, then rename to `out`: readers never see half a model.
    `save_keras` writes model.keras (training passes the Keras model's `save`)."""
    if out.exists():
        raise UsageError(f"{out}: output directory already exists (--out)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        save_weights(tmp / WEIGHTS_FILE, weights)
        if save_keras is not None:
            save_keras(tmp / "model.keras")
        vocab.save(tmp / "vocab.json")
        templates.save(tmp / "templates.json")
        for name, src in (extra_files or {}).items():
            if src.is_file():
                shutil.copyfile(src, tmp / name)
        checked = [*(n for n in MODEL_FILES if (tmp / n).is_file()), *REQUIRED_FILES]
        meta.files = {name: sha256_file(tmp / name) for name in checked}
        write_json(tmp / "meta.json", meta.to_json())
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def amend_artifact(path: Path, edit: Callable[[Path, ArtifactMeta], None]) -> ArtifactMeta:
    """Change an existing artifact as a whole: copy it, let `edit` change files and meta in the
    copy, redo the checksums of every listed file, check the copy, then swap it in by rename.
    A failure anywhere leaves `path` as it was."""
    meta = read_meta(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".amend", dir=path.parent))
    try:
        shutil.copytree(path, tmp, dirs_exist_ok=True)
        edit(tmp, meta)
        meta.files = {name: sha256_file(tmp / name) for name in meta.files}
        write_json(tmp / "meta.json", meta.to_json())
        read_meta(tmp)  # verify before swapping in
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.rename(path, old / path.name)
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def read_meta(path: Path) -> ArtifactMeta:
    """Parse and verify an artifact directory's meta.json and checksums."""
    if not path.is_dir():
        raise ArtifactError(f"{path}: not a model artifact directory (no such directory)")
    meta_path = path / "meta.json"
    try:
        obj = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ArtifactError(f"{meta_path}: missing; {path} is not a complete model artifact") from e
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ArtifactError(f"{meta_path}: corrupt ({e})") from e
    meta = ArtifactMeta.from_json(obj, meta_path)
    for name, digest in meta.files.items():
        f = path / name
        if not f.is_file():
            raise ArtifactError(f"{f}: missing from the artifact")
        if sha256_file(f) != digest:
            raise ArtifactError(f"{f}: checksum mismatch, the artifact is corrupt or was modified")
    return meta
