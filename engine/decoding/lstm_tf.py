"""lstm's decoding step in TensorFlow ops: the tf decoder's cell (tf_step.py compiles it).

The same arithmetic as the NumPy step (lstm.py), from the same folded input tables, in float32,
batch-major ([B, features]). Imports TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from engine.decoding import lstm
from engine.decoding.recurrent import condition
from engine.decoding.tf_step import State, StateSpec
from memebot.artifact.configs import LSTMConfig
from memebot.artifact.weights import weight


class LSTMCell:
    """A TFCell over an `lstm` model's weights (weights.npz), as TF variables on the device
    scope it is built in. State: h and c, each [B, layers, hidden]."""

    condition = staticmethod(condition)

    def __init__(self, weights: dict[str, np.ndarray], config: LSTMConfig):
        def var(name: str, value: np.ndarray) -> tf.Variable:
            return tf.Variable(np.asarray(value, np.float32), trainable=False, name=name)

        self.hidden = H = config.hidden
        self.max_boxes = config.max_boxes
        char_box, template = lstm.input_tables(weights, config)  # [V*max_boxes, 4H], [S, 4H]
        self.char_box_in = var("char_box_in", char_box)
        self.template_in = var("template_in", template)
        self.layers: list[tuple[Any, Any, Any]] = []
        for i in range(config.layers):
            cell = f"lstm_{i}/lstm_cell/"
            upper = i > 0  # layer 0's input kernel and bias are in the tables above
            self.layers.append(
                (
                    var(f"kernel_{i}", weight(weights, cell + "kernel")) if upper else None,
                    var(f"recurrent_{i}", weight(weights, cell + "recurrent_kernel")),
                    var(f"bias_{i}", weight(weights, cell + "bias")) if upper else None,
                )
            )
        out_b = weight(weights, "logits/bias")  # [V]
        self.out_w = var("logits_kernel", weight(weights, "logits/kernel"))  # [H, V]
        self.out_b = var("logits_bias", out_b)
        self.n_chars = len(out_b)
        self.n_conds = len(template)
        self.state_spec: StateSpec = (((config.layers, H), tf.float32),) * 2  # h, c

    def step(self, state: State, chars: Any, boxes: Any, conds: Any) -> tuple[Any, State]:
        """Keras' LSTM, as in lstm.LSTMStepper.step, on [B, 4H] blocks (gates i, f, g, o)."""
        h_all, c_all = state  # [B, L, H] each
        mb = self.max_boxes
        x = tf.gather(self.char_box_in, chars * mb + tf.minimum(boxes, mb - 1))  # [B, 4H]
        x += tf.gather(self.template_in, conds)
        below, hs, cs = x, [], []
        for i, (kernel, rec, bias) in enumerate(self.layers):
            z = x if kernel is None else tf.matmul(below, kernel) + bias  # [B, 4H]
            z += tf.matmul(h_all[:, i], rec)
            gi, gf, gg, go = tf.split(z, 4, axis=1)
            c = tf.sigmoid(gf) * c_all[:, i] + tf.sigmoid(gi) * tf.tanh(gg)  # [B, H]
            below = tf.sigmoid(go) * tf.tanh(c)
            hs.append(below)
            cs.append(c)
        logits = tf.matmul(below, self.out_w) + self.out_b  # [B, V]
        return logits, (tf.stack(hs, axis=1), tf.stack(cs, axis=1))
