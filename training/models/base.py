"""What an architecture brings to training: one object per architecture (char_gru.py,
seed_cnn.py) instead of `arch == ...` branches in train, evaluate and the callbacks.

Its decoding step comes from engine.decoding (the same code that serves it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from engine.decoding.model import LoadedModel, Stepper
from memebot.artifact.configs import ModelConfig
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from memebot.errors import UsageError
from training.data import Caption

# An eval pass yields, per batch, equal-length arrays over its rows (a caption for char-gru,
# a character for seed-cnn): caption index, nats, correct top-1 picks, characters counted.
EvalRows = Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


class Architecture:
    name: ClassVar[str]
    config_class: ClassVar[type]
    default_lr: ClassVar[float]
    default_batch_size: ClassVar[int] = 256
    precisions: ClassVar[tuple[str, ...]] = ("float32",)  # what it can train in
    trains_negatives: ClassVar[bool] = False  # has an unlikelihood term (--negative-data)

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise UsageError(
                f"--precision {precision}: {self.name} trains in {', '.join(self.precisions)} only"
            )

    def build(
        self, config: Any, vocab: Vocab, templates: TemplateTable, *, precision: str = "float32"
    ) -> Any:
        """The Keras model (uncompiled)."""
        raise NotImplementedError

    def compile(self, model: Any, lr: float, *, jit: bool = False) -> None:
        raise NotImplementedError

    def batches(
        self,
        captions: Sequence[Caption],
        vocab: Vocab,
        templates: TemplateTable,
        config: Any,
        *,
        batch_size: int,
        train: bool,
        seed: int = 0,
    ) -> Any:
        """Training (`train`: shuffled, template dropout) or validation batches."""
        raise NotImplementedError

    def batches_with_negatives(
        self,
        captions: Sequence[Caption],
        negatives: Sequence[Caption],
        vocab: Vocab,
        templates: TemplateTable,
        config: Any,
        *,
        batch_size: int,
        negative_weight: float,
        seed: int = 0,
    ) -> Any:
        """Training batches of `captions` (likelihood) mixed with `negatives` (downvoted rows:
        an unlikelihood term, each of their targets weighted `negative_weight`). Only
        architectures with `trains_negatives`."""
        raise UsageError(f"--negative-data: {self.name} has no unlikelihood term (char-gru has)")

    def fit_input(self, data: Any, *, repeat: bool) -> Any:
        """What `model.fit` reads for `data` (`repeat`: an endless stream, --steps-per-epoch)."""
        return data

    def targets_per_batch(self, data: Any) -> float:
        """Mean predicted characters per batch (throughput figures)."""
        raise NotImplementedError

    def eval_pass(
        self,
        keras_model: Any,
        captions: Sequence[Caption],
        vocab: Vocab,
        templates: TemplateTable,
        config: Any,
        *,
        batch_size: int,
        progress: bool,
    ) -> EvalRows:
        """Per batch: caption index, nats, correct picks and characters of every target
        (arrays of equal length, summed per template by training/evaluate.py)."""
        raise NotImplementedError

    def callbacks(self, config: Any, lr: float) -> list[Any]:
        """Keras callbacks of its own for `memebot train` (the transformer's LR warmup), run
        after the shared ones (ReduceLROnPlateau among them)."""
        return []

    def export_weights(self, keras_model: Any) -> dict[str, np.ndarray]:
        """The weights by variable path, float32 (weights.npz)."""
        return {v.path: np.asarray(v.numpy(), dtype=np.float32) for v in keras_model.weights}

    def stepper(self, keras_model: Any, config: Any, vocab: Vocab) -> Stepper:
        """The decoding step over a model in training (sample printing)."""
        raise NotImplementedError

    def decoder(
        self, keras_model: Any, config: ModelConfig, vocab: Vocab, templates: TemplateTable
    ) -> LoadedModel:
        """A decodable model from a Keras model in training (no artifact yet)."""
        return LoadedModel(
            self.name, config, vocab, templates, self.stepper(keras_model, config, vocab)
        )
