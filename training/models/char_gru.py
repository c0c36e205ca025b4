"""`char-gru`: the default architecture, a conditioned character GRU (its Keras graph).

Training uses teacher forcing on whole captions (every position is a target; recurrent.py);
decoding runs one character at a time on the carried hidden state (engine/decoding/char_gru.py,
NumPy, or the compiled kernel in engine/decoding/gru_kernel.py), over the same weights by
variable path.
"""

from __future__ import annotations

from typing import Any

from engine.decoding.char_gru import CharGRUStepper
from engine.decoding.model import Stepper
from memebot.artifact.configs import CharGRUConfig
from memebot.artifact.vocab import Vocab
from training.models.recurrent import RecurrentArch, build_graph, weights_of

__all__ = ["CharGRU", "build", "weights_of"]


def gru_layer(config: CharGRUConfig, index: int, dtype: str | None) -> Any:
    from keras import layers

    return layers.GRU(config.hidden, return_sequences=True, name=f"gru_{index}", dtype=dtype)


def build(
    config: CharGRUConfig, vocab_size: int, n_slots: int, *, dtype: str | None = None
):  # -> keras.Model
    """`dtype`: a Keras dtype policy (recurrent.build_graph)."""
    return build_graph(config, vocab_size, n_slots, gru_layer, name="char_gru", dtype=dtype)


class CharGRU(RecurrentArch):
    name = "char-gru"
    config_class = CharGRUConfig

    def recurrent_layer(self, config: Any, index: int, dtype: str | None) -> Any:
        return gru_layer(config, index, dtype)

    def stepper(self, keras_model: Any, config: Any, vocab: Vocab) -> Stepper:
        return CharGRUStepper(weights_of(keras_model), config)
