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


def read_artifact(path: Path, *, weights: bool = True) -> Artifact:
    """meta.json (schema + checksums), config, vocabulary, template table and, with `weights`,
    weights.npz checked against the config (`read_npz_weights`). Every failure is an
    ArtifactError."""
    meta = read_meta(path)
    config = meta.model_config(path / "meta.json")
    vocab = Vocab.load(path / "vocab.json")
    templates = TemplateTable.load(path / "templates.json")
    art = Artifact(path, meta, config, vocab, templates, None)
    if weights:
        art.weights = read_npz_weights(art)
    return art


def read_npz_weights(art: Artifact) -> Weights:
    """The artifact's weights.npz, checked against its config, vocabulary and templates."""
    if WEIGHTS_FILE not in art.meta.files:
        raise ArtifactError(
            f"{art.path}: has no {WEIGHTS_FILE} (made before it existed); add it with "
            f"scripts/convert_artifact.py {art.path}"
        )
    source = art.path / WEIGHTS_FILE
    arrays = load_weights(source)
    check_weights(arrays, art.config, art.vocab.size, art.templates.n_slots, source)
    return arrays
