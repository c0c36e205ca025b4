"""char-gru's NumPy decoding step over the artifact's weights (weights.npz).

Embeddings and layer 0's input kernel are folded into lookup tables once, leaving one
[3H,H]x[H,B] matmul per layer per step, so a step costs the same at character 5 as at
character 80. The compiled float16 kernel (gru_kernel.py) is the faster twin; model.py picks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.decoding.recurrent import StackedState, condition, fold_inputs, t
from memebot.artifact.configs import CharGRUConfig
from memebot.artifact.weights import weight

__all__ = ["CharGRUStepper", "condition", "input_tables"]


def input_tables(
    weights: dict[str, np.ndarray], config: CharGRUConfig, kernel_dtype: Any = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Layer 0's input projection as lookup tables [V*max_boxes, 3H] and [slots, 3H]
    (recurrent.fold_inputs), with the GRU's input bias (bias row 0)."""
    k0 = weight(weights, "gru_0/gru_cell/kernel")
    b0 = weight(weights, "gru_0/gru_cell/bias")[0]  # [3H]: layer 0's input bias
    return fold_inputs(weights, config, k0, b0, kernel_dtype)


class CharGRUStepper(StackedState):
    """NumPy incremental decoder over a trained `char-gru` model's weights (by variable path).
    State [L, H, B]."""

    returns_logp = False  # step returns logits (LoadedModel.step log-softmaxes them)
    backend = "numpy"

    def __init__(self, weights: dict[str, np.ndarray], config: CharGRUConfig):
        def get(suffix: str) -> np.ndarray:
            return weight(weights, suffix)

        self.config = config
        self.blocks = config.layers
        self.hidden = config.hidden
        self.char_box_in, self.template_in = input_tables(weights, config)
        # Everything else is kept transposed (features x batch): OpenBLAS multiplies
        # [3H,H]x[H,B] 10-25% faster than [B,H]x[H,3H] at serving batch sizes, and the gates
        # become contiguous row blocks.
        self.layers: list[tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]] = []
        for i in range(config.layers):
            kernel = None if i == 0 else t(get(f"gru_{i}/gru_cell/kernel"))  # [3H, H]
            rec = t(get(f"gru_{i}/gru_cell/recurrent_kernel"))  # [3H, H]
            bias = get(f"gru_{i}/gru_cell/bias")  # [2, 3H]: input bias, recurrent bias
            self.layers.append((kernel, rec, bias[0][:, None].copy(), bias[1][:, None].copy()))
        self.out_w = get("logits/kernel")  # [H, V]
        self.out_b = get("logits/bias")  # [V]

    def step(
        self, state: np.ndarray, chars: np.ndarray, boxes: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One character for each row: ids [B] -> (logits [B,V], new state [L,H,B]).

        Keras' GRU (reset_after): z, r = sigmoid(x_zr + h_zr); n = tanh(x_n + r * h_n);
        h' = z * h + (1 - z) * n, where x_* include the input bias and h_* the recurrent one.
        Written with in-place ops on [features, B] blocks."""
        H = self.hidden
        h_all = np.empty_like(state)
        idx = chars * self.config.max_boxes + np.minimum(boxes, self.config.max_boxes - 1)
        x = self.char_box_in[idx]  # [B,3H]
        x += self.template_in[slots]
        xp = np.ascontiguousarray(x.T)  # [3H,B], a fresh array we may overwrite
        for i, (kernel, rec, b_in, b_rec) in enumerate(self.layers):
            if kernel is not None:
                xp = kernel @ h_all[i - 1]
                xp += b_in
            h = state[i]  # [H,B]
            hp = rec @ h  # [3H,B]
            hp += b_rec
            zr = xp[: 2 * H]
            zr += hp[: 2 * H]
            zr *= 0.5  # sigmoid(x) = (tanh(x/2) + 1) / 2, overflow-free
            np.tanh(zr, out=zr)
            zr += 1.0
            zr *= 0.5
            n = hp[2 * H :]
            n *= zr[H:]  # r * h_n
            n += xp[2 * H :]
            np.tanh(n, out=n)
            out = h_all[i]
            np.subtract(h, n, out=out)  # h' = n + z * (h - n)
            out *= zr[:H]
            out += n
        logits = h_all[-1].T @ self.out_w  # [B,V], row-major for the per-row softmax
        logits += self.out_b
        return logits, h_all
