"""char-gru's decoding step in TensorFlow ops: the tf decoder's cell (tf_step.py compiles it).

The same arithmetic as the NumPy step (char_gru.py), from the same folded input tables, in
float32, batch-major ([B, features]: what a GPU matmul wants). Imports TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from engine.decoding import char_gru
from engine.decoding.tf_step import State, StateSpec
from memebot.artifact.configs import CharGRUConfig
from memebot.artifact.weights import weight


class CharGRUCell:
    """A TFCell over a `char-gru` model's weights (weights.npz), as TF variables on the device
    scope it is built in. State: one tensor [B, layers, hidden]."""

    condition = staticmethod(char_gru.condition)

    def __init__(self, weights: dict[str, np.ndarray], config: CharGRUConfig):
        def var(name: str, value: np.ndarray) -> tf.Variable:
            return tf.Variable(np.asarray(value, np.float32), trainable=False, name=name)

        self.hidden = H = config.hidden
        self.max_boxes = config.max_boxes
        char_box, template = char_gru.input_tables(weights, config)  # [V*max_boxes, 3H], [S, 3H]
        self.char_box_in = var("char_box_in", char_box)
        self.template_in = var("template_in", template)
        self.layers: list[tuple[Any, Any, Any, Any]] = []
        for i in range(config.layers):
            bias = weight(weights, f"gru_{i}/gru_cell/bias")  # [2, 3H]: input, recurrent
            kernel = var(f"kernel_{i}", weight(weights, f"gru_{i}/gru_cell/kernel")) if i else None
            rec = var(f"recurrent_{i}", weight(weights, f"gru_{i}/gru_cell/recurrent_kernel"))
            self.layers.append(
                (kernel, rec, var(f"bias_in_{i}", bias[0]), var(f"bias_h_{i}", bias[1]))
            )
        out_b = weight(weights, "logits/bias")  # [V]
        self.out_w = var("logits_kernel", weight(weights, "logits/kernel"))  # [H, V]
        self.out_b = var("logits_bias", out_b)
        self.n_chars = len(out_b)
        self.n_conds = len(template)
        self.state_spec: StateSpec = (((config.layers, H), tf.float32),)

    def step(self, state: State, chars: Any, boxes: Any, conds: Any) -> tuple[Any, State]:
        """Keras' GRU (reset_after), as in char_gru.CharGRUStepper.step, on [B, 3H] blocks."""
        (h_all,) = state  # [B, L, H]
        H, mb = self.hidden, self.max_boxes
        x = tf.gather(self.char_box_in, chars * mb + tf.minimum(boxes, mb - 1))  # [B, 3H]
        x += tf.gather(self.template_in, conds)
        below, out = x, []
        for i, (kernel, rec, b_in, b_rec) in enumerate(self.layers):
            xp = x if kernel is None else tf.matmul(below, kernel) + b_in  # [B, 3H]
            h = h_all[:, i]  # [B, H]
            hp = tf.matmul(h, rec) + b_rec  # [B, 3H]
            zr = tf.sigmoid(xp[:, : 2 * H] + hp[:, : 2 * H])
            z, r = zr[:, :H], zr[:, H:]
            n = tf.tanh(xp[:, 2 * H :] + r * hp[:, 2 * H :])
            below = n + z * (h - n)  # [B, H]
            out.append(below)
        logits = tf.matmul(below, self.out_w) + self.out_b  # [B, V]
        return logits, (tf.stack(out, axis=1),)
