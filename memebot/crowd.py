"""The crowd's taste: a logistic scorer of caption text fitted to Imgflip's own votes.

`CrowdScorer.score(texts, template)` is the logit of "this caption is in the top quartile of
its template by votes per view, not the bottom one" (training/crowd.py fits it), from hashed
word and character n-grams (memebot/ngrams.py): one sparse dot product per caption, NumPy only,
so serving needs neither TensorFlow nor scikit-learn. The template is not used: the scorer
ranks candidates of one request, which share their template, and a per-template offset would
not change that order.

`crowd.npz`, beside the model it was fitted for (models/default/crowd.npz), holds

    weights   float16 [n_buckets]   the logistic weights (float16 halves the file; the
                                    rounding moves a logit by < 1e-3)
    bias      float32 [1]
    header    a JSON string: format, format_version, features (FEATURES_VERSION), n_buckets,
              model_version (the artifact's meta.json version), weights_sha256 (over the
              weights' and bias's bytes), fitted (UTC ISO time), labels, metrics (AUCs)

and is written whole or not at all (a temp file in the same directory, then a rename).
`load_crowd` refuses, with a ScorerError naming the file, a file whose checksum fails, whose
format or features version this memebot does not know, or that was fitted for another model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from memebot.errors import ScorerError
from memebot.ngrams import FEATURES_VERSION, N_BUCKETS, hash_features
from memebot.scorer_file import read_scorer, rounded, weights_sha256, write_scorer

CROWD_FILE = "crowd.npz"
FORMAT = "memebot-crowd"
FORMAT_VERSION = 1


@dataclass
class CrowdScorer:
    """A fitted scorer: `weights` [n_buckets] and `bias`, with what it was fitted for."""

    weights: np.ndarray  # float32 at use (stored float16)
    bias: float
    model_version: str
    fitted: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    labels: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    n_buckets: int = N_BUCKETS
    features: str = FEATURES_VERSION

    name = "crowd"

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float32)
        if self.weights.shape != (self.n_buckets,):
            raise ValueError(f"weights of shape {self.weights.shape}, want ({self.n_buckets},)")

    def score(self, texts: Sequence[str], template: str = "") -> np.ndarray:
        """The logit of each caption (`box|box|`) being a top- rather than a bottom-quartile
        caption of its template: float32 [len(texts)], higher is better."""
        del template  # ranking is within one template (module docstring)
        if not len(texts):
            return np.zeros(0, dtype=np.float32)
        return hash_features(texts, self.n_buckets).dot(self.weights) + np.float32(self.bias)

    def header(self) -> dict[str, Any]:
        w16 = self.weights.astype(np.float16)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "features": self.features,
            "n_buckets": self.n_buckets,
            "model_version": self.model_version,
            "weights_sha256": weights_sha256(w16, np.array([self.bias], np.float32)),
            "fitted": self.fitted,
            "labels": self.labels,
            "metrics": self.metrics,
        }

    def save(self, path: Path) -> Path:
        """Write `path` whole or not at all. Weights are stored float16: the scorer in memory
        is rounded to them too, so what is saved is what scores."""
        self.weights = rounded(self.weights)
        write_scorer(path, self.weights, self.bias, self.header())
        return path


def load_crowd(path: Path, model_version: str | None) -> CrowdScorer:
    """Read and check `path`. `model_version`: the version of the model it must have been
    fitted for (the artifact's meta.json `version`); None accepts any (evaluation, tests)."""
    weights, bias, h = read_scorer(
        path, what="the crowd scorer's file", format=FORMAT, format_version=FORMAT_VERSION
    )
    fitted_for = h.get("model_version")
    if model_version is not None and fitted_for != model_version:
        raise ScorerError(
            f"{path}: fitted for model {fitted_for!r}, not {model_version!r}; refit it with "
            "`memebot crowd fit`"
        )
    if not isinstance(fitted_for, str):
        raise ScorerError(f"{path}: header has no model_version")
    return CrowdScorer(
        weights=weights,
        bias=bias,
        model_version=fitted_for,
        fitted=str(h.get("fitted", "")),
        labels=dict(h.get("labels") or {}),
        metrics=dict(h.get("metrics") or {}),
        n_buckets=int(h["n_buckets"]),
    )


def crowd_for(model_dir: Path, model_version: str) -> CrowdScorer | None:
    """The crowd scorer shipped beside a model (`MODEL/crowd.npz`), checked against that
    model's version; None when the model has none."""
    path = model_dir / CROWD_FILE
    return load_crowd(path, model_version) if path.exists() else None
