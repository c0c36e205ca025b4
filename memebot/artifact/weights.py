"""Framework-free weights: `weights.npz`, float32 arrays keyed by Keras variable path
("gru_0/gru_cell/kernel"), written with every artifact so that serving needs no TensorFlow.

The shapes follow from the config (`weight_shapes`), the vocabulary and the template table; the
loader checks every one before a model is built from them.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memebot.artifact.configs import ModelConfig
from memebot.errors import ArtifactError

WEIGHTS_FILE = "weights.npz"
Weights = dict[str, np.ndarray]


def save_weights(path: Path, weights: Mapping[str, np.ndarray]) -> None:
    arrays: dict[str, Any] = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    with path.open("wb") as f:
        np.savez(f, **arrays)


def load_weights(path: Path) -> Weights:
    """Every array of `path`, read whole (a corrupt or truncated file is an ArtifactError)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: np.asarray(z[k]) for k in z.files}
    except FileNotFoundError as e:
        raise ArtifactError(f"{path}: missing from the artifact") from e
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{path}: corrupt weights file ({e})") from e
    if not out:
        raise ArtifactError(f"{path}: holds no weights")
    return out


def check_weights(
    weights: Weights, config: ModelConfig, vocab_size: int, n_slots: int, source: Path | str
) -> None:
    """Every array float32 and finite, and exactly the variables and shapes the config makes
    (where it says: seed-cnn's are checked by Keras when it loads model.keras)."""
    for k, v in weights.items():
        if v.dtype != np.float32 or not np.isfinite(v).all():
            raise ArtifactError(f"{source}: weight {k!r} is not finite float32")
    want = config.weight_shapes(vocab_size, n_slots)
    if want is None:
        return
    misfit = f"{source}: weights do not fit the config"
    for suffix, shape in want.items():
        hits = [k for k in weights if k == suffix or k.endswith("/" + suffix)]
        if len(hits) != 1:
            raise ArtifactError(f"{misfit}: expected one {suffix!r}, found {len(hits)}")
        if weights[hits[0]].shape != shape:
            got = weights[hits[0]].shape
            raise ArtifactError(f"{misfit}: {suffix!r} has shape {got}, the config needs {shape}")
    if len(weights) != len(want):
        raise ArtifactError(f"{misfit}: {len(weights)} arrays, the config makes {len(want)}")


def weight(weights: Mapping[str, np.ndarray], suffix: str) -> np.ndarray:
    """The one weight whose variable path ends with `suffix`."""
    (k,) = [p for p in weights if p.endswith(suffix)]
    return weights[k]
