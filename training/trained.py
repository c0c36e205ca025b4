"""A trained model as training sees it: the artifact plus its Keras model (model.keras), for
evaluation and fine-tuning. Serving reads weights.npz instead (engine/decoding)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memebot.artifact.configs import ModelConfig
from memebot.artifact.load import read_artifact
from memebot.artifact.meta import ArtifactMeta
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from memebot.artifact.weights import WEIGHTS_FILE, Weights, check_weights, load_weights
from memebot.errors import ArtifactError
from training.models import ARCHITECTURES, Architecture


@dataclass(eq=False)
class TrainedModel:
    arch: Architecture
    keras_model: Any
    config: ModelConfig
    vocab: Vocab
    templates: TemplateTable
    meta: ArtifactMeta | None = None  # None: not written as an artifact yet
    path: Path | None = None

    @property
    def version(self) -> str:
        return self.meta.version if self.meta else f"{self.arch.name}-untrained"


def load_trained(path: Path) -> TrainedModel:
    """The artifact (checked whole, as the engine checks it) with its Keras model rebuilt from
    the config and its weights loaded: from model.keras, or, in an artifact that ships only
    weights.npz (models/default, to stay small), from that by variable path."""
    art = read_artifact(path, weights=False)
    arch = ARCHITECTURES[art.meta.arch]
    from memebot.tfquiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    model = arch.build(art.config, art.vocab, art.templates)
    if "model.keras" in art.meta.files:
        try:
            model.load_weights(path / "model.keras")
        except (zipfile.BadZipFile, EOFError) as e:
            # The checksum matched, so the file was damaged before it was recorded (or it was
            # redone): a truncated or otherwise broken archive.
            raise ArtifactError(f"{path / 'model.keras'}: corrupt weights file ({e})") from e
        except (ValueError, OSError, KeyError) as e:
            raise ArtifactError(
                f"{path / 'model.keras'}: corrupt, or its weights do not fit the recorded "
                f"config ({e})"
            ) from e
    else:  # the meta schema lists weights.npz when there is no model.keras
        weights = load_weights(path / WEIGHTS_FILE)
        check_weights(
            weights, art.config, art.vocab.size, art.templates.n_slots, path / WEIGHTS_FILE
        )
        assign_weights(model, weights, path / WEIGHTS_FILE)
    return TrainedModel(arch, model, art.config, art.vocab, art.templates, art.meta, path)


def assign_weights(model: Any, weights: Weights, source: Path) -> None:
    """Set every variable of `model` from `weights` by variable path (shapes must match)."""
    for v in model.weights:
        w = weights.get(v.path)
        if w is None or tuple(w.shape) != tuple(v.shape):
            raise ArtifactError(
                f"{source}: weights do not fit the recorded config ({v.path!r} "
                f"{'missing' if w is None else f'has shape {w.shape}, needs {tuple(v.shape)}'})"
            )
        v.assign(w)
