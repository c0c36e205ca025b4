"""`lstm`: the char-LSTM of Deep Learning with Python (Chollet, 1st ed. §8.1: one LSTM(128)
reading 60-character windows, a softmax over the next character, sampled with a temperature),
grown to char-gru's size and conditioned on template and box exactly like char-gru
(recurrent.py: two stacked layers of 384, teacher forcing on whole captions), so the two differ
only in the cell.

Decoding carries h and c per row in NumPy (engine/decoding/lstm.py) over weights.npz.
"""

from __future__ import annotations

from typing import Any

from engine.decoding.lstm import LSTMStepper
from engine.decoding.model import Stepper
from memebot.artifact.configs import LSTMConfig
from memebot.artifact.vocab import Vocab
from training.models.recurrent import RecurrentArch, build_graph, weights_of


def lstm_layer(config: LSTMConfig, index: int, dtype: str | None) -> Any:
    from keras import layers

    return layers.LSTM(config.hidden, return_sequences=True, name=f"lstm_{index}", dtype=dtype)


def build(
    config: LSTMConfig, vocab_size: int, n_slots: int, *, dtype: str | None = None
):  # -> keras.Model
    """`dtype`: a Keras dtype policy (recurrent.build_graph)."""
    return build_graph(config, vocab_size, n_slots, lstm_layer, name="lstm", dtype=dtype)


class LSTM(RecurrentArch):
    name = "lstm"
    config_class = LSTMConfig

    def recurrent_layer(self, config: Any, index: int, dtype: str | None) -> Any:
        return lstm_layer(config, index, dtype)

    def stepper(self, keras_model: Any, config: Any, vocab: Vocab) -> Stepper:
        return LSTMStepper(weights_of(keras_model), config)
