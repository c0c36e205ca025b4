"""What the NumPy steps of the conditioned character RNNs (char_gru.py, lstm.py) share: the
conditioning id, layer 0's input projection folded into lookup tables, and a state of stacked
[H, B] blocks (features x batch) that rows join and leave along its last axis."""

from __future__ import annotations

from typing import Any

import numpy as np

from memebot.artifact.configs import RecurrentConfig
from memebot.artifact.templates import GENERIC_SLOT, TemplateEntry
from memebot.artifact.weights import weight


def condition(entry: TemplateEntry | None) -> int:
    """The recurrent models condition on the template's slot (0 = any template)."""
    return GENERIC_SLOT if entry is None else entry.slot


def fold_inputs(
    weights: dict[str, np.ndarray],
    config: RecurrentConfig,
    kernel0: np.ndarray,
    bias0: np.ndarray,
    kernel_dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Layer 0's input projection folded into lookup tables: [V*max_boxes, G] for (char, box),
    its input bias `bias0` [G] included, and [slots, G] for the template, so a step's input
    projection is two gathers and an add (x@K = Ec[c]@K_c + Eb[b]@K_b + Et[t]@K_t).
    `kernel0` [Ec+Eb+Et, G]; `kernel_dtype`: the precision it is rounded to first (the
    compiled char-gru step keeps float16)."""
    ec, eb = config.char_emb, config.box_emb
    k0 = kernel0.astype(kernel_dtype).astype(np.float32)
    char_in = weight(weights, "char_emb/embeddings") @ k0[:ec]  # [V, G]
    box_in = weight(weights, "box_emb/embeddings") @ k0[ec : ec + eb]  # [max_boxes, G]
    # Gathered by rows (a column gather from a transposed table is 4x slower and leaves a
    # Fortran-ordered result).
    char_box = (char_in[:, None, :] + box_in[None, :, :] + bias0).reshape(-1, k0.shape[1])
    template = weight(weights, "template_emb/embeddings") @ k0[ec + eb :]
    return char_box.astype(np.float32), template.astype(np.float32)


class StackedState:
    """State [S, H, B]: S blocks of [H, B] (one per layer for a GRU, h and c per layer for an
    LSTM); rows are columns, so beams reorder and requests join along the last axis."""

    config: RecurrentConfig
    blocks: int  # S

    condition = staticmethod(condition)

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((self.blocks, self.config.hidden, batch), dtype=np.float32)

    def take_state(self, state: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return state[:, :, idx]

    def concat_states(self, states: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(states, axis=2)


def t(w: np.ndarray) -> np.ndarray:
    """`w` transposed, C-contiguous (the steps multiply [G,H]x[H,B])."""
    return np.ascontiguousarray(w.T)
