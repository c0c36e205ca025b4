"""seed-cnn decoding: the article's conv net re-reads the whole text so far at every step.

Its input row is the 12-digit zero-padded Imgflip template id, two spaces, the box index,
two spaces, then the caption so far, left-padded with 0 to `seq_len` ids. The Keras model is
read from model.keras (Keras imported here, lazily: seed-cnn is the one decoder that needs it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from memebot.artifact.configs import SeedCNNConfig
from memebot.artifact.templates import GENERIC_SLOT, TemplateEntry
from memebot.artifact.vocab import BOS, PAD, Vocab
from memebot.errors import ArtifactError, UsageError


def row_prefix(imgflip_id: int | None, box_index: int) -> str:
    """`000000061533  0  `: the article's conditioning prefix (None -> the generic id 0)."""
    return f"{(imgflip_id or 0):012d}  {box_index}  "


def encode_rows(vocab: Vocab, prefixes: list[str], seq_len: int) -> np.ndarray:
    """Left-pad each `prefix + text so far` to `seq_len` ids, keeping the rightmost chars."""
    out = np.full((len(prefixes), seq_len), PAD, dtype=np.int32)
    for i, s in enumerate(prefixes):
        ids = vocab.encode(s)[-seq_len:]
        out[i, seq_len - len(ids) :] = ids
    return out


def load_keras(path: Path, config: SeedCNNConfig, vocab: Vocab) -> Any:
    """model.keras of a seed-cnn artifact, checked against its config and vocabulary."""
    from memebot.tfquiet import import_tensorflow_quietly

    try:
        import_tensorflow_quietly()
        import keras
    except ImportError as e:
        raise UsageError(
            f"{path}: a seed-cnn model steps through Keras, which is not installed "
            f"({e}): pip install 'memebot[train]'"
        ) from e

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file; all mean "corrupt"
        raise ArtifactError(f"{path}: cannot load the Keras model ({e})") from e
    want_in, want_out = (None, config.seq_len), (None, vocab.size)
    if tuple(model.input_shape) != want_in or tuple(model.output_shape) != want_out:
        raise ArtifactError(
            f"{path}: model maps {model.input_shape} -> {model.output_shape}, the config and "
            f"vocabulary need {want_in} -> {want_out}"
        )
    return model


class SeedStepper:
    """seed-cnn has no state to carry: the state is the text so far, re-read every step."""

    returns_logp = False
    backend = "keras"

    def __init__(self, model: Any, config: SeedCNNConfig, vocab: Vocab):
        self.model, self.config, self.vocab = model, config, vocab

    @staticmethod
    def condition(entry: TemplateEntry | None) -> int:
        """seed-cnn conditions on the Imgflip id (0 = any template)."""
        if entry is None or entry.slot == GENERIC_SLOT:
            return 0
        return int(entry.imgflip_id or 0)

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
            row_prefix(int(cond), int(b)) + t
            for t, b, cond in zip(texts, boxes, conds, strict=True)
        ]
        x = encode_rows(self.vocab, rows, self.config.seq_len)
        probs = np.asarray(self.model(x, training=False))
        return np.log(np.maximum(probs, 1e-30)), texts
