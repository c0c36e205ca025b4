"""char-gru's decoding step through the compiled kernel (`_gru_step.c`), with float16 weights.

Built by `pip install` as an optional extension; where it could not be built (no C compiler),
`available()` is False and decoding uses the NumPy stepper in char_gru.py instead. Rounding the
weights to float16 moves logits by ~1e-3 and val nats/char by well under 0.001
(docs/BENCHMARKS.md measures it); halving the bytes each step must read is the point.
"""

from __future__ import annotations

import ctypes
import importlib.util
from functools import cache
from typing import Any

import numpy as np

_MODULE = "training.models._gru_step"
_P = ctypes.c_void_p


@cache
def _library() -> Any:
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.origin:
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    fn = lib.memebot_gru_step
    fn.argtypes = [_P, ctypes.c_int, _P, _P]
    fn.restype = None
    return lib


class _Model(ctypes.Structure):
    """`gru_model` in _gru_step.c."""

    _fields_ = [
        ("layers", ctypes.c_int),
        ("hidden", ctypes.c_int),
        ("G", ctypes.c_int),
        ("Vp", ctypes.c_int),
        ("threads", ctypes.c_int),
        ("wx", ctypes.POINTER(_P)),
        ("wh", ctypes.POINTER(_P)),
        ("bx", _P),
        ("bh", _P),
        ("wo", _P),
        ("bo", _P),
    ]


def available() -> bool:
    """True when the compiled kernel was built and loads on this machine."""
    return _library() is not None


PANEL = 32  # columns per packed weight panel (the kernel's tile width)


def _round_panel(n: int) -> int:
    return -(-n // PANEL) * PANEL


def pack(w: np.ndarray, cols: int) -> np.ndarray:
    """[K, N] float -> float16 panels [cols/PANEL, K, PANEL]: the column block a thread
    multiplies is contiguous. Columns past N (up to `cols`) are zero."""
    k, n = w.shape
    padded = np.zeros((k, cols), dtype=np.float16)
    padded[:, :n] = w
    return np.ascontiguousarray(padded.reshape(k, cols // PANEL, PANEL).transpose(1, 0, 2))


class KernelGRUStepper:
    """Same interface as char_gru.CharGRUStepper; state is [L, B, H] (rows contiguous)."""

    def __init__(self, weights: dict[str, np.ndarray], config: Any, threads: int = 0):
        lib = _library()
        if lib is None:
            raise RuntimeError("the compiled char-gru kernel is not available")
        self._fn = lib.memebot_gru_step
        self.config = config
        self.threads = threads
        H = self.hidden = config.hidden
        L = config.layers
        self.G = G = _round_panel(3 * H)

        def get(suffix: str) -> np.ndarray:
            (k,) = [p for p in weights if p.endswith(suffix)]
            return weights[k]

        ec, eb = config.char_emb, config.box_emb
        k0 = get("gru_0/gru_cell/kernel")  # [Ec+Eb+Et, 3H]
        # Layer 0's input projection as lookup tables, from the float16-rounded kernel (the
        # same rounding as every other weight), padded to G columns: [V*max_boxes, G], [slots, G]
        k0 = k0.astype(np.float16).astype(np.float32)
        b0 = get("gru_0/gru_cell/bias")[0]
        char_in = get("char_emb/embeddings") @ k0[:ec]
        box_in = get("box_emb/embeddings") @ k0[ec : ec + eb]
        table = (char_in[:, None, :] + box_in[None, :, :] + b0).reshape(-1, 3 * H)
        self.char_box_in = np.zeros((len(table), G), dtype=np.float32)
        self.char_box_in[:, : 3 * H] = table
        self.template_in = np.zeros((get("template_emb/embeddings").shape[0], G), np.float32)
        self.template_in[:, : 3 * H] = get("template_emb/embeddings") @ k0[ec + eb :]
        self.bx = np.zeros((L, G), dtype=np.float32)
        self.bh = np.zeros((L, G), dtype=np.float32)
        self._unused = np.zeros((1, 16), dtype=np.float16)
        self.wx: list[np.ndarray] = []
        self.wh: list[np.ndarray] = []
        for i in range(L):
            bias = get(f"gru_{i}/gru_cell/bias")  # [2, 3H]: input bias, recurrent bias
            self.bx[i, : 3 * H], self.bh[i, : 3 * H] = bias[0], bias[1]
            # layer 0's input kernel is folded into the tables above; the kernel skips wx[0]
            self.wx.append(pack(get(f"gru_{i}/gru_cell/kernel"), G) if i else self._unused)
            self.wh.append(pack(get(f"gru_{i}/gru_cell/recurrent_kernel"), G))
        out_w = get("logits/kernel")  # [H, V]
        self.vocab_size = out_w.shape[1]
        self.Vp = _round_panel(self.vocab_size)
        self.wo = pack(out_w, self.Vp)
        self.bo = np.zeros(self.Vp, dtype=np.float32)
        self.bo[: self.vocab_size] = get("logits/bias")
        self._wx_ptrs = (_P * L)(*[w.ctypes.data for w in self.wx])
        self._wh_ptrs = (_P * L)(*[w.ctypes.data for w in self.wh])
        self._model = _Model(
            L,
            H,
            G,
            self.Vp,
            threads,
            self._wx_ptrs,
            self._wh_ptrs,
            self.bx.ctypes.data,
            self.bh.ctypes.data,
            self.wo.ctypes.data,
            self.bo.ctypes.data,
        )
        self._model_ref = ctypes.byref(self._model)

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((self.config.layers, batch, self.hidden), dtype=np.float32)

    def take_state(self, state: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return state[:, idx]

    def concat_states(self, states: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(states, axis=1)

    def step(
        self, state: np.ndarray, chars: np.ndarray, boxes: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One character for each row: ids [B] -> (logits [B,V], new state [L,B,H])."""
        L, H, G, B = self.config.layers, self.hidden, self.G, len(chars)
        state = np.ascontiguousarray(state, dtype=np.float32)
        # One buffer per step (the layout memebot_gru_step expects): out | xin | logits | scratch
        arena = np.empty(B * (L * H + 3 * G + self.Vp), dtype=np.float32)
        out = arena[: L * B * H].reshape(L, B, H)
        x = arena[L * B * H : (L * H + G) * B].reshape(B, G)
        logits = arena[(L * H + G) * B : (L * H + G + self.Vp) * B].reshape(B, self.Vp)
        mb = self.config.max_boxes
        np.take(self.char_box_in, np.asarray(chars) * mb + np.minimum(boxes, mb - 1), 0, out=x)
        x += self.template_in[slots]
        if B:
            self._fn(self._model_ref, B, state.ctypes.data, arena.ctypes.data)
        return logits[:, : self.vocab_size], out
