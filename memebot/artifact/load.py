"""Read a whole artifact and check that its parts fit together, without any ML framework."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memebot.artifact.configs import ModelConfig
from memebot.artifact.meta import ArtifactMeta, read_meta
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from memebot.artifact.weights import WEIGHTS_FILE, Weights, check_weights, load_weights
from memebot.errors import ArtifactError


@dataclass
class Artifact:
    path: Path
    meta: ArtifactMeta
    config: ModelConfig
    vocab: Vocab
    templates: TemplateTable
    weights: Weights | None  # None when read without weights


# Architectures served from weights.npz; the others (seed-cnn) decode through model.keras.
SERVED_FROM_NPZ = ("char-gru",)


def read_artifact(path: Path, *, weights: bool | str = True) -> Artifact:
    """meta.json (schema + checksums), config, vocabulary, template table and weights.npz
    checked against the config: with `weights` True, or "served" for the architectures that
    decode from it (SERVED_FROM_NPZ). Every failure is an ArtifactError."""
    meta = read_meta(path)
    config = meta.model_config(path / "meta.json")
    vocab = Vocab.load(path / "vocab.json")
    templates = TemplateTable.load(path / "templates.json")
    arrays = None
    if weights is True or (weights == "served" and meta.arch in SERVED_FROM_NPZ):
        if WEIGHTS_FILE not in meta.files:
            raise ArtifactError(
                f"{path}: has no {WEIGHTS_FILE} (made before it existed); add it with "
                f"scripts/convert_artifact.py {path}"
            )
        arrays = load_weights(path / WEIGHTS_FILE)
        check_weights(arrays, config, vocab.size, templates.n_slots, path / WEIGHTS_FILE)
    return Artifact(path, meta, config, vocab, templates, arrays)
