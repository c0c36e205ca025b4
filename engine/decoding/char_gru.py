"""char-gru's NumPy decoding step over the artifact's weights (weights.npz).

Embeddings and layer 0's input kernel are folded into lookup tables once, leaving one
[3H,H]x[H,B] matmul per layer per step, so a step costs the same at character 5 as at
character 80. The compiled float16 kernel (gru_kernel.py) is the faster twin; model.py picks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memebot.artifact.configs import CharGRUConfig
from memebot.artifact.templates import GENERIC_SLOT, TemplateEntry
from memebot.artifact.weights import weight


def condition(entry: TemplateEntry | None) -> int:
    """char-gru conditions on the template's slot (0 = any template)."""
    return GENERIC_SLOT if entry is None else entry.slot


def input_tables(
    weights: dict[str, np.ndarray], config: CharGRUConfig, kernel_dtype: Any = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Layer 0's input projection folded into lookup tables: [V*max_boxes, 3H] for (char, box),
    its input bias included, and [slots, 3H] for the template, so a step's input projection is
    two gathers and an add (x@K = Ec[c]@K_c + Eb[b]@K_b + Et[t]@K_t). `kernel_dtype`: the
    precision the input kernel is rounded to first (the compiled step keeps float16)."""
    ec, eb = config.char_emb, config.box_emb
    k0 = weight(weights, "gru_0/gru_cell/kernel").astype(kernel_dtype).astype(np.float32)
    b0 = weight(weights, "gru_0/gru_cell/bias")[0]  # [3H]: layer 0's input bias
    char_in = weight(weights, "char_emb/embeddings") @ k0[:ec]  # [V, 3H]
    box_in = weight(weights, "box_emb/embeddings") @ k0[ec : ec + eb]  # [max_boxes, 3H]
    # Gathered by rows (a column gather from a transposed table is 4x slower and leaves a
    # Fortran-ordered result).
    char_box = (char_in[:, None, :] + box_in[None, :, :] + b0).reshape(-1, 3 * config.hidden)
    template = weight(weights, "template_emb/embeddings") @ k0[ec + eb :]
    return char_box.astype(np.float32), template.astype(np.float32)


class CharGRUStepper:
    """NumPy incremental decoder over a trained `char-gru` model's weights (by variable path)."""

    returns_logp = False  # step returns logits (LoadedModel.step log-softmaxes them)

    def __init__(self, weights: dict[str, np.ndarray], config: CharGRUConfig):
        def get(suffix: str) -> np.ndarray:
            return weight(weights, suffix)

        self.config = config
        self.hidden = config.hidden
        self.char_box_in, self.template_in = input_tables(weights, config)
        # Everything else is kept transposed (features x batch): OpenBLAS multiplies
        # [3H,H]x[H,B] 10-25% faster than [B,H]x[H,3H] at serving batch sizes, and the gates
        # become contiguous row blocks.
        self.layers: list[tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]] = []
        for i in range(config.layers):
            kernel = None if i == 0 else _t(get(f"gru_{i}/gru_cell/kernel"))  # [3H, H]
            rec = _t(get(f"gru_{i}/gru_cell/recurrent_kernel"))  # [3H, H]
            bias = get(f"gru_{i}/gru_cell/bias")  # [2, 3H]: input bias, recurrent bias
            self.layers.append((kernel, rec, bias[0][:, None].copy(), bias[1][:, None].copy()))
        self.out_w = get("logits/kernel")  # [H, V]
        self.out_b = get("logits/bias")  # [V]

    condition = staticmethod(condition)

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((self.config.layers, self.hidden, batch), dtype=np.float32)  # [L,H,B]

    def take_state(self, state: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return state[:, :, idx]

    def concat_states(self, states: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(states, axis=2)

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


def _t(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.T)
