"""lstm's NumPy decoding step over the artifact's weights (weights.npz).

The same shape of step as char-gru's NumPy step (char_gru.py): embeddings and layer 0's input
kernel folded into lookup tables, then one [4H,H]x[H,B] matmul per layer (two for the upper
layers), carrying h and c per row. There is no compiled kernel for it: the C kernel is
char-gru's.
"""

from __future__ import annotations

import numpy as np

from engine.decoding.recurrent import StackedState, fold_inputs, t
from memebot.artifact.configs import LSTMConfig
from memebot.artifact.weights import weight


def input_tables(
    weights: dict[str, np.ndarray], config: LSTMConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Layer 0's input projection as lookup tables [V*max_boxes, 4H] and [slots, 4H]
    (recurrent.fold_inputs), with the LSTM's bias (one per layer, added once)."""
    k0, b0 = weight(weights, "lstm_0/lstm_cell/kernel"), weight(weights, "lstm_0/lstm_cell/bias")
    return fold_inputs(weights, config, k0, b0)


class LSTMStepper(StackedState):
    """NumPy incremental decoder over a trained `lstm` model's weights (by variable path).
    State [2L, H, B]: h of layers 0..L-1, then c of layers 0..L-1."""

    returns_logp = False  # step returns logits (LoadedModel.step log-softmaxes them)
    backend = "numpy"

    def __init__(self, weights: dict[str, np.ndarray], config: LSTMConfig):
        def get(suffix: str) -> np.ndarray:
            return weight(weights, suffix)

        self.config = config
        self.blocks = 2 * config.layers
        self.char_box_in, self.template_in = input_tables(weights, config)
        # Transposed (features x batch), as in char_gru.py: the gates are contiguous row blocks.
        self.layers: list[tuple[np.ndarray | None, np.ndarray, np.ndarray | None]] = []
        for i in range(config.layers):
            upper = i > 0  # layer 0's input kernel and bias are in the tables above
            kernel = t(get(f"lstm_{i}/lstm_cell/kernel")) if upper else None  # [4H, H]
            bias = get(f"lstm_{i}/lstm_cell/bias")[:, None].copy() if upper else None  # [4H, 1]
            self.layers.append((kernel, t(get(f"lstm_{i}/lstm_cell/recurrent_kernel")), bias))
        self.out_w = get("logits/kernel")  # [H, V]
        self.out_b = get("logits/bias")  # [V]

    def step(
        self, state: np.ndarray, chars: np.ndarray, boxes: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One character for each row: ids [B] -> (logits [B,V], new state [2L,H,B]).

        Keras' LSTM: z = x@K + h@R + b split into i, f, g, o; c' = sigmoid(f) * c +
        sigmoid(i) * tanh(g); h' = sigmoid(o) * tanh(c')."""
        H, L = self.config.hidden, self.config.layers
        new = np.empty_like(state)
        idx = chars * self.config.max_boxes + np.minimum(boxes, self.config.max_boxes - 1)
        x = self.char_box_in[idx]  # [B,4H]
        x += self.template_in[slots]
        z = np.ascontiguousarray(x.T)  # [4H,B], a fresh array we may overwrite
        for i, (kernel, rec, bias) in enumerate(self.layers):
            if kernel is not None:
                z = kernel @ new[i - 1]
                z += bias
            z += rec @ state[i]
            ifo = z[: 2 * H], z[3 * H :]
            for gate in ifo:  # sigmoid(x) = (tanh(x/2) + 1) / 2, overflow-free
                gate *= 0.5
                np.tanh(gate, out=gate)
                gate += 1.0
                gate *= 0.5
            g = z[2 * H : 3 * H]
            np.tanh(g, out=g)
            c = new[L + i]
            np.multiply(z[H : 2 * H], state[L + i], out=c)  # f * c
            g *= z[:H]  # i * g
            c += g
            h = new[i]
            np.tanh(c, out=h)
            h *= z[3 * H :]  # o * tanh(c')
        logits = new[L - 1].T @ self.out_w  # [B,V], row-major for the per-row softmax
        logits += self.out_b
        return logits, new
