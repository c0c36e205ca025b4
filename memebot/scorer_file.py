"""The file of a logistic caption scorer over hashed n-grams (memebot/ngrams.py): what the
crowd's scorer (memebot/crowd.py) and a server's taste (memebot/taste_file.py) both write.

An `.npz` of `weights` float16 [n_buckets], `bias` float32 [1] and `header`, a JSON string
with at least format, format_version, features (ngrams.FEATURES_VERSION), n_buckets and
weights_sha256 (over the weights' and bias's bytes); each kind adds its own fields. Written
whole or not at all (a temp file in the same directory, fsynced, then a rename); read back
with every check a serving process needs before it trusts the weights, each failure a
ScorerError naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from memebot.errors import ScorerError
from memebot.ngrams import FEATURES_VERSION

FLOAT16_MAX = 6e4  # a little under float16's 65504: a weight beyond it would store as inf


def weights_sha256(weights: np.ndarray, bias: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(weights, dtype=np.float16).tobytes())
    h.update(np.ascontiguousarray(bias, dtype=np.float32).tobytes())
    return h.hexdigest()


def rounded(weights: np.ndarray) -> np.ndarray:
    """`weights` as they will be stored (float16), back in float32: a scorer keeps these, so
    what is saved is what scores. ValueError when they do not fit float16."""
    w = np.asarray(weights, dtype=np.float32)
    if not np.isfinite(w).all() or np.abs(w).max(initial=0) > FLOAT16_MAX:
        raise ValueError("weights are not finite float16 values")
    return w.astype(np.float16).astype(np.float32)


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """`write(binary file)` into a temp file beside `path`, fsynced, then renamed over it;
    readable by every user (mkstemp's 0600 would hide it from an engine run by another)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_scorer(path: Path, weights: np.ndarray, bias: float, header: dict[str, Any]) -> None:
    """Write a scorer file; `weights` should already be `rounded` and `header` carry their
    checksum (`weights_sha256`)."""
    raw = json.dumps(header, sort_keys=True)
    atomic_write(
        path,
        lambda f: np.savez(
            f,
            weights=np.asarray(weights).astype(np.float16),
            bias=np.array([bias], dtype=np.float32),
            header=np.array(raw),
        ),
    )


def read_scorer(
    path: Path, *, what: str, format: str, format_version: int
) -> tuple[np.ndarray, float, dict[str, Any]]:
    """Read and check a scorer file of kind `format` (named `what` in errors: "the crowd
    scorer's file"): the weights (float32), the bias, and the header for the caller's own
    fields. Refused (ScorerError): missing, corrupt, another format or version, features this
    memebot does not compute, weights that do not fit the header, a failed checksum."""
    try:
        with np.load(path, allow_pickle=False) as z:
            weights, bias, raw = z["weights"], z["bias"], str(z["header"][()])
    except FileNotFoundError as e:
        raise ScorerError(f"{path}: missing ({what})") from e
    except (OSError, ValueError, EOFError, KeyError, IndexError, zipfile.BadZipFile) as e:
        raise ScorerError(f"{path}: corrupt ({what}: {e})") from e
    try:
        h = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ScorerError(f"{path}: corrupt header ({e.msg})") from e
    if not isinstance(h, dict):
        raise ScorerError(f"{path}: corrupt header (not a JSON object)")
    if h.get("format") != format or h.get("format_version") != format_version:
        raise ScorerError(
            f"{path}: format {h.get('format')!r} version {h.get('format_version')!r}, "
            f"this memebot reads {format!r} version {format_version}"
        )
    if h.get("features") != FEATURES_VERSION:
        raise ScorerError(
            f"{path}: features {h.get('features')!r}, this memebot computes {FEATURES_VERSION!r}"
        )
    n = h.get("n_buckets")
    if (
        not isinstance(n, int)
        or weights.dtype != np.float16
        or weights.shape != (n,)
        or bias.shape != (1,)
        or bias.dtype != np.float32
    ):
        raise ScorerError(f"{path}: weights do not fit the header ({weights.shape} vs {n})")
    if h.get("weights_sha256") != weights_sha256(weights, bias):
        raise ScorerError(f"{path}: checksum mismatch, the file is corrupt or was modified")
    if not np.isfinite(weights).all() or not np.isfinite(bias).all():
        raise ScorerError(f"{path}: weights are not finite")
    return weights.astype(np.float32), float(bias[0]), h
