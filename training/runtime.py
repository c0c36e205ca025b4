"""A loaded model: Keras graph rebuilt from the artifact's config, plus a per-step decoder.

`LoadedModel.step` is what every decoder (training samples, `memebot generate`, the engine)
calls: one character for each row of a batch -> log-probabilities over the vocabulary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memebot.errors import ArtifactError
from training.artifact import ArtifactMeta, config_from_dict, read_meta
from training.models import char_gru, gru_kernel, seed_cnn
from training.templates import GENERIC_SLOT, TemplateEntry, TemplateTable
from training.vocab import BOS, Vocab

DECODERS = ("auto", "kernel", "numpy")


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


class _SeedStepper:
    """seed-cnn has no state to carry: the state is the text so far, re-read every step."""

    def __init__(self, model: Any, config: seed_cnn.SeedCNNConfig, vocab: Vocab):
        self.model, self.config, self.vocab = model, config, vocab

    def initial_state(self, batch: int) -> list[str]:
        return [""] * batch

    def take_state(self, state: list[str], idx: np.ndarray) -> list[str]:
        return [state[i] for i in idx]

    def concat_states(self, states: list[list[str]]) -> list[str]:
        return [s for part in states for s in part]

    def step(
        self, state: list[str], chars: np.ndarray, boxes: np.ndarray, conds: np.ndarray
    ) -> tuple[np.ndarray, list[str]]:
        texts = [
            t if c == BOS else t + self.vocab.decode([c]) for t, c in zip(state, chars, strict=True)
        ]
        rows = [
            seed_cnn.row_prefix(int(cond), int(b)) + t
            for t, b, cond in zip(texts, boxes, conds, strict=True)
        ]
        x = seed_cnn.encode_rows(self.vocab, rows, self.config.seq_len)
        probs = np.asarray(self.model(x, training=False))
        return np.log(np.maximum(probs, 1e-30)), texts


@dataclass
class LoadedModel:
    path: Path | None
    meta: ArtifactMeta | None
    arch: str
    config: Any
    vocab: Vocab
    templates: TemplateTable
    keras_model: Any
    decoder: str = "auto"  # char-gru step: "kernel" (compiled, float16), "numpy", or "auto"
    threads: int = 0  # kernel threads per step (0 = every core)

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder {self.decoder!r}: choose one of {', '.join(DECODERS)}")
        self._stepper: Any
        if self.arch != "char-gru":
            self._stepper = _SeedStepper(self.keras_model, self.config, self.vocab)
            return
        weights = char_gru.weights_of(self.keras_model)
        use_kernel = self.decoder == "kernel" or (self.decoder == "auto" and gru_kernel.available())
        if use_kernel and not gru_kernel.available():
            raise ArtifactError(
                "decoder 'kernel': the compiled char-gru kernel is not built here "
                "(reinstall with a C compiler, or use the numpy decoder)"
            )
        self._stepper = (
            gru_kernel.KernelGRUStepper(weights, self.config, self.threads)
            if use_kernel
            else char_gru.CharGRUStepper(weights, self.config)
        )

    @property
    def step_backend(self) -> str:
        """What runs a decoding step: "kernel", "numpy" or "keras" (seed-cnn)."""
        if isinstance(self._stepper, gru_kernel.KernelGRUStepper):
            return "kernel"
        return "numpy" if isinstance(self._stepper, char_gru.CharGRUStepper) else "keras"

    @property
    def version(self) -> str:
        return self.meta.version if self.meta else f"{self.arch}-untrained"

    def condition(self, entry: TemplateEntry | None) -> int:
        """Per-row conditioning id: the slot (char-gru) or the Imgflip id (seed-cnn); 0 = any."""
        if entry is None or entry.slot == GENERIC_SLOT:
            return 0
        return entry.slot if self.arch == "char-gru" else int(entry.imgflip_id or 0)

    def initial_state(self, batch: int) -> Any:
        return self._stepper.initial_state(batch)

    def take_state(self, state: Any, idx: np.ndarray) -> Any:
        """Rows `idx` of a batched state (beam reordering, finished rows leaving)."""
        return self._stepper.take_state(state, idx)

    def concat_states(self, states: list[Any]) -> Any:
        """One batched state from several (requests joining the batch)."""
        return self._stepper.concat_states(states)

    def step(
        self, state: Any, chars: np.ndarray, boxes: np.ndarray, conds: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        out, state = self._stepper.step(state, chars, boxes, conds)
        if getattr(self._stepper, "returns_logp", False):  # the compiled kernel, float32
            return out, state
        return log_softmax(np.asarray(out, dtype=np.float64)), state


def build_keras(
    arch: str, config: Any, vocab: Vocab, templates: TemplateTable, *, precision: str = "float32"
) -> Any:
    """`precision`: "float32", or "mixed_bfloat16" for char-gru training (see train.PRECISIONS)."""
    if arch == "char-gru":
        dtype = None if precision == "float32" else precision
        return char_gru.build(config, vocab.size, templates.n_slots, dtype=dtype)
    if precision != "float32":
        raise ValueError(f"{arch} trains in float32 only, as published")
    return seed_cnn.build(config, vocab.size)


def load_model(path: Path, *, decoder: str = "auto", threads: int = 0) -> LoadedModel:
    """Rebuild from meta.json's config + vocab + template table, then load the weights.
    `decoder` and `threads`: see LoadedModel."""
    meta = read_meta(path)
    config = config_from_dict(meta.arch, meta.config, path / "meta.json")
    vocab = Vocab.load(path / "vocab.json")
    templates = TemplateTable.load(path / "templates.json")
    quiet_tensorflow()
    model = build_keras(meta.arch, config, vocab, templates)
    try:
        model.load_weights(path / "model.keras")
    except (ValueError, OSError, KeyError) as e:
        raise ArtifactError(
            f"{path / 'model.keras'}: weights do not fit the recorded config ({e})"
        ) from e
    return LoadedModel(path, meta, meta.arch, config, vocab, templates, model, decoder, threads)
