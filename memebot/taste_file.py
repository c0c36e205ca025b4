"""A server's taste: a small logistic scorer of caption text fitted to that server's votes,
its file, and the pointer that says which of a server's files serves.

`TasteScorer.score(texts, template)` is the logit of "this server upvotes this caption", from
the same hashed n-grams as the crowd's scorer (memebot/ngrams.py) but in far fewer buckets
(2^12): a server gives a few dozen to a few thousand votes, which fill no more, and 4096
float16 weights make a file of ~8 KB, so many servers' tastes fit in one engine's memory.

A server's files live under `MODELS/tastes/GUILD_ID/`:

    v1.npz, v2.npz, ...   one per fitted version: `weights` float16 [n_buckets], `bias`
                          float32 [1], `header` (a JSON string: format, format_version,
                          features, n_buckets, guild_id, version, base_version, n_votes,
                          heldout_auc, weights_sha256, fitted, metrics,
                          length_factor: the server's drawn box lengths are scaled by it)
    active.json           {"version": n, "file": "vN.npz", "sha256": <the file's sha256>}:
                          the version that serves; absent, the default taste serves

Every file is written whole or not at all (a temp file in the same directory, then a rename),
and a version's file is written before the pointer names it: a run killed midway leaves the
pointer, and so the old taste, as they were. `load_taste` refuses with a ScorerError naming the
file a file that is corrupt, whose checksum fails, of a format this memebot does not read, or
fitted on another base model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from memebot.errors import ScorerError
from memebot.ngrams import FEATURES_VERSION, hash_features
from memebot.scorer_file import atomic_write, read_scorer, rounded, weights_sha256, write_scorer

FORMAT = "memebot-taste"
FORMAT_VERSION = 1
TASTE_BUCKETS = 1 << 12
ACTIVE_FILE = "active.json"
_FILE_RE = re.compile(r"v[1-9][0-9]*\.npz")  # what a pointer may name: a file of its own dir


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class TasteScorer:
    """One server's fitted taste: `weights` [n_buckets] and `bias`, with what it was fitted
    on and from. `version` is 0 until the store numbers it."""

    weights: np.ndarray  # float32 at use (stored float16)
    bias: float
    guild_id: int
    base_version: str
    version: int = 0
    n_votes: int = 0
    heldout_auc: float | None = None
    fitted: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    metrics: dict[str, Any] = field(default_factory=dict)
    n_buckets: int = TASTE_BUCKETS
    features: str = FEATURES_VERSION
    # what the lengths it draws are scaled by for this server (retrain/taste_fit.py); 1: none
    length_factor: float = 1.0

    name = "taste"

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float32)
        if self.weights.shape != (self.n_buckets,):
            raise ValueError(f"weights of shape {self.weights.shape}, want ({self.n_buckets},)")

    def score(self, texts: Sequence[str], template: str = "") -> np.ndarray:
        """The logit of each caption (`box|box|`) being upvoted in this server: float32
        [len(texts)], higher is better. The template is not used (candidates of one request
        share it)."""
        del template
        if not len(texts):
            return np.zeros(0, dtype=np.float32)
        return hash_features(texts, self.n_buckets).dot(self.weights) + np.float32(self.bias)

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "features": self.features,
            "n_buckets": self.n_buckets,
            "guild_id": self.guild_id,
            "version": self.version,
            "base_version": self.base_version,
            "n_votes": self.n_votes,
            "heldout_auc": self.heldout_auc,
            "weights_sha256": weights_sha256(self.weights, np.array([self.bias], np.float32)),
            "fitted": self.fitted,
            "metrics": self.metrics,
            "length_factor": self.length_factor,
        }


def save_taste(path: Path, scorer: TasteScorer) -> Path:
    """Write `path` whole or not at all. Weights are stored float16; the scorer in memory is
    rounded to them too, so what is saved is what scores."""
    scorer.weights = rounded(scorer.weights)
    write_scorer(path, scorer.weights, scorer.bias, scorer.header())
    return path


def load_taste(path: Path, *, base_version: str | None, guild_id: int | None = None) -> TasteScorer:
    """Read and check `path`. `base_version`: the base model the taste must have been fitted
    on (None accepts any: evaluation, tests); `guild_id`, if given, the server it must be of."""
    weights, bias, h = read_scorer(
        path, what="a server's taste file", format=FORMAT, format_version=FORMAT_VERSION
    )
    fitted_on = h.get("base_version")
    if not isinstance(fitted_on, str):
        raise ScorerError(f"{path}: header has no base_version")
    if base_version is not None and fitted_on != base_version:
        raise ScorerError(
            f"{path}: fitted on base model {fitted_on!r}, not {base_version!r}; the server's "
            "next /retrain fits a taste for this one"
        )
    gid, version, n_votes = h.get("guild_id"), h.get("version"), h.get("n_votes")
    if not all(isinstance(x, int) for x in (gid, version, n_votes)):
        raise ScorerError(f"{path}: header lacks guild_id, version or n_votes")
    if guild_id is not None and gid != guild_id:
        raise ScorerError(f"{path}: the taste of server {gid}, not of server {guild_id}")
    auc = h.get("heldout_auc")
    return TasteScorer(
        weights=weights,
        bias=bias,
        guild_id=int(gid),  # type: ignore[arg-type]
        base_version=fitted_on,
        version=int(version),  # type: ignore[arg-type]
        n_votes=int(n_votes),  # type: ignore[arg-type]
        heldout_auc=float(auc) if isinstance(auc, int | float) else None,
        fitted=str(h.get("fitted", "")),
        metrics=dict(h.get("metrics") or {}),
        n_buckets=int(h["n_buckets"]),
        length_factor=_length_factor(path, h.get("length_factor", 1.0)),
    )


def _length_factor(path: Path, value: object) -> float:
    """A header's length factor (absent in files written before tastes had one: 1)."""
    if not isinstance(value, int | float) or not 0.0 < float(value) <= 10.0:
        raise ScorerError(f"{path}: header has a bad length_factor {value!r}")
    return float(value)


# -- where a server's tastes live, and which one serves ------------------------------------


def taste_dir(models_dir: Path, guild_id: int) -> Path:
    return Path(models_dir) / "tastes" / str(int(guild_id))


def taste_file(models_dir: Path, guild_id: int, version: int) -> Path:
    return taste_dir(models_dir, guild_id) / f"v{int(version)}.npz"


@dataclass(frozen=True)
class ActivePointer:
    version: int
    file: str
    sha256: str


def write_active(models_dir: Path, guild_id: int, version: int) -> ActivePointer:
    """Point the server's `active.json` at its version `version` (whose file must exist):
    on promotion and on rollback. The pointer holds the file's sha256, so an engine can tell
    the file it loaded from a newer one."""
    path = taste_file(models_dir, guild_id, version)
    if not path.is_file():
        raise ScorerError(f"{path}: missing, so the server's taste cannot point at it")
    pointer = ActivePointer(version=int(version), file=path.name, sha256=file_sha256(path))
    body = json.dumps(
        {"version": pointer.version, "file": pointer.file, "sha256": pointer.sha256},
        sort_keys=True,
    ).encode()
    atomic_write(taste_dir(models_dir, guild_id) / ACTIVE_FILE, lambda f: f.write(body))
    return pointer


def clear_active(models_dir: Path, guild_id: int) -> None:
    """No taste of its own serves the server (a rollback from its first taste): the default
    serves. Removing one file is atomic."""
    (taste_dir(models_dir, guild_id) / ACTIVE_FILE).unlink(missing_ok=True)


def read_pointer(models_dir: Path, guild_id: int) -> ActivePointer | None:
    """The server's pointer; None when it has none. ScorerError when it is corrupt."""
    path = taste_dir(models_dir, guild_id) / ACTIVE_FILE
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are both
        raise ScorerError(f"{path}: corrupt taste pointer ({e})") from e
    if not isinstance(raw, dict):
        raise ScorerError(f"{path}: corrupt taste pointer (not a JSON object)")
    version, name, sha = raw.get("version"), raw.get("file"), raw.get("sha256")
    if (
        not isinstance(version, int)
        or not isinstance(name, str)
        or not _FILE_RE.fullmatch(name)
        or name != f"v{version}.npz"
        or not isinstance(sha, str)
    ):
        raise ScorerError(f"{path}: corrupt taste pointer ({raw!r})")
    return ActivePointer(version=version, file=name, sha256=sha)


def read_active(models_dir: Path, guild_id: int) -> Path | None:
    """The file of the server's taste that serves; None when the default taste serves it.
    ScorerError when the pointer is corrupt (the file itself is checked by `load_taste`)."""
    pointer = read_pointer(models_dir, guild_id)
    return None if pointer is None else taste_dir(models_dir, guild_id) / pointer.file
