"""char-gru's decoding step through the compiled kernel (`_gru_step.c`), with float16 weights.

Built by `pip install` as an optional extension; where it could not be built (no C compiler),
`available()` is False and decoding uses the NumPy stepper in char_gru.py instead. Rounding the
weights to float16 moves logits by ~1e-3 and val nats/char by well under 0.001
(docs/BENCHMARKS.md measures it); halving the bytes each step must read is the point.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from functools import cache
from typing import Any

import numpy as np

from engine.decoding import char_gru
from memebot.artifact.vocab import N_SPECIAL
from memebot.artifact.weights import weight
from memebot.errors import ArtifactError

_MODULE = "engine.decoding._gru_step"
_P = ctypes.c_void_p


@cache
def _library() -> Any:
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.origin:
        return None
    # OpenMP's threads wait at each layer's barrier by spinning (libgomp's default: ~300k
    # spins before sleeping), which on a 2-core machine shared with anything else (the bot, a
    # retrain, another replica) makes a batched step several times slower, up to 30x: a
    # spinning thread holds the core its partner needs. So they sleep at once (passive); the
    # futex wake-up that costs each barrier is why the kernel steps batches below
    # PARALLEL_ROWS on one thread (bench/kernel_contention.py, docs/ENGINE.md). libgomp reads
    # this once, when it loads, so it is set before the kernel (and libgomp with it) is
    # loaded; a policy (or spin count) already in the environment wins.
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    fn = lib.memebot_gru_step
    fn.argtypes = [_P, ctypes.c_int, _P, _P, _P, _P, _P]
    fn.restype = ctypes.c_int
    for name in ("memebot_gru_wide", "memebot_gru_tile_bits"):
        if hasattr(lib, name):  # (a build from before tile_bits has only memebot_gru_wide)
            getattr(lib, name).argtypes = []
            getattr(lib, name).restype = ctypes.c_int
    return lib


class _Model(ctypes.Structure):
    """`gru_model` in _gru_step.c."""

    _fields_ = [
        ("layers", ctypes.c_int),
        ("hidden", ctypes.c_int),
        ("G", ctypes.c_int),
        ("Vp", ctypes.c_int),
        ("threads", ctypes.c_int),
        ("vocab", ctypes.c_int),
        ("max_boxes", ctypes.c_int),
        ("n_inputs", ctypes.c_int64),
        ("n_slots", ctypes.c_int64),
        ("char_box_in", _P),
        ("template_in", _P),
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


def tile_bits() -> int:
    """The register width the built kernel's tiles are written for: 512 (AVX-512), 256 (AVX2
    with F16C and FMA), 0 (a portable build, or no kernel)."""
    lib = _library()
    if lib is None:
        return 0
    if hasattr(lib, "memebot_gru_tile_bits"):
        return int(lib.memebot_gru_tile_bits())
    return 512 if lib.memebot_gru_wide() else 0


def preferred() -> bool:
    """True when the kernel is built with its AVX-512 or its AVX2 tiles, where it beats the
    NumPy step; a portable build (no AVX2/F16C/FMA) is slower than NumPy, so `auto` leaves it.

    Measured on Zen 4 (2 cores), one process, builds interleaved, minima of 40 runs, one
    thread: a 1-row step 0.057 ms with the AVX2 tiles (`-march=x86-64-v3`), 0.067 AVX-512,
    0.113 NumPy; 64 rows 1.73, 1.65 and 2.12 ms. The AVX2 build before its own tiles (the
    64-byte tiles split in ymm halves, on the stack): 1.06 ms at 1 row, 67 ms at 64
    (docs/ENGINE.md)."""
    return tile_bits() >= 256


PANEL = 32  # columns per packed weight panel (the kernel's tile width)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class Float16Overflow(ArtifactError):
    """The weights do not fit float16, the kernel's storage."""


UNITS = 16  # hidden units per block: one block's z, r and n columns form a 48-column panel


def block_order(w: np.ndarray, hidden: int) -> np.ndarray:
    """[..., 3H] gate-major columns (z | r | n, Keras) -> [..., 3Hp] in unit-block order:
    block b holds z, r, n of units UNITS*b .. UNITS*b+UNITS-1; padded units are zero."""
    hp = _round_up(hidden, UNITS)
    out = np.zeros((*w.shape[:-1], hp // UNITS, 3, UNITS), dtype=w.dtype)
    gates = w.reshape(*w.shape[:-1], 3, hidden)  # [..., 3, H]
    padded = np.zeros((*w.shape[:-1], 3, hp), dtype=w.dtype)
    padded[..., :hidden] = gates
    out[...] = np.moveaxis(padded.reshape(*w.shape[:-1], 3, hp // UNITS, UNITS), -3, -2)
    return out.reshape(*w.shape[:-1], 3 * hp)


def pack_units(w: np.ndarray, hidden: int) -> np.ndarray:
    """A GRU kernel [K, 3H] -> float16 [Hp/UNITS, Kp, 48] (K rows padded to Kp = Hp when K is
    the hidden size), each unit block's panel contiguous."""
    hp = _round_up(hidden, UNITS)
    cols = block_order(w, hidden)  # [K, 3Hp]
    rows = np.zeros((hp if w.shape[0] == hidden else w.shape[0], 3 * hp), dtype=np.float32)
    rows[: w.shape[0]] = cols
    return np.ascontiguousarray(
        rows.reshape(len(rows), hp // UNITS, 3 * UNITS).transpose(1, 0, 2).astype(np.float16)
    )


def pack(w: np.ndarray, cols: int) -> np.ndarray:
    """[K, N] float -> float16 panels [cols/PANEL, K, PANEL]: the column block a thread
    multiplies is contiguous. Columns past N (up to `cols`) are zero."""
    k, n = w.shape
    padded = np.zeros((k, cols), dtype=np.float16)
    padded[:, :n] = w
    return np.ascontiguousarray(padded.reshape(k, cols // PANEL, PANEL).transpose(1, 0, 2))


class KernelGRUStepper:
    """Same interface as char_gru.CharGRUStepper, except that `step` returns log-probabilities
    (`returns_logp`); state is [L, B, Hp] (rows contiguous; Hp = hidden rounded up to 16, the
    padded units stay 0)."""

    returns_logp = True  # step's first output is already log-softmaxed, specials at -inf
    backend = "kernel"
    condition = staticmethod(char_gru.condition)

    def __init__(self, weights: dict[str, np.ndarray], config: Any, threads: int = 0):
        """Float16Overflow if a weight does not fit float16."""
        lib = _library()
        if lib is None:
            raise RuntimeError("the compiled char-gru kernel is not available")
        self._fn = lib.memebot_gru_step
        self.config = config
        self.threads = threads
        H = config.hidden
        L = config.layers
        self.hidden = Hp = _round_up(H, UNITS)
        self.G = G = 3 * Hp

        def get(suffix: str) -> np.ndarray:
            return weight(weights, suffix)

        # Layer 0's input projection as lookup tables from the float16-rounded kernel (the
        # same rounding as every other weight), in block order: [V*max_boxes, G], [slots, G]
        char_box_in, template_in = char_gru.input_tables(weights, config, np.float16)
        self.char_box_in = block_order(char_box_in, H)
        self.template_in = block_order(template_in, H)
        self.bx = np.zeros((L, G), dtype=np.float32)
        self.bh = np.zeros((L, G), dtype=np.float32)
        self._unused = np.zeros((1, 48), dtype=np.float16)
        self.wx: list[np.ndarray] = []
        self.wh: list[np.ndarray] = []
        for i in range(L):
            bias = get(f"gru_{i}/gru_cell/bias")  # [2, 3H]: input bias, recurrent bias
            self.bx[i], self.bh[i] = block_order(bias[0], H), block_order(bias[1], H)
            # layer 0's input kernel is folded into the tables above; the kernel skips wx[0]
            self.wx.append(pack_units(get(f"gru_{i}/gru_cell/kernel"), H) if i else self._unused)
            self.wh.append(pack_units(get(f"gru_{i}/gru_cell/recurrent_kernel"), H))
        out_w = get("logits/kernel")  # [H, V]
        self.vocab_size = out_w.shape[1]
        self.Vp = _round_up(self.vocab_size, PANEL)
        rows = np.zeros((Hp, self.vocab_size), dtype=np.float32)
        rows[:H] = out_w
        self.wo = pack(rows, self.Vp)
        self.bo = np.zeros(self.Vp, dtype=np.float32)
        self.bo[: self.vocab_size] = get("logits/bias")
        halves = [self.char_box_in, self.template_in, *self.wx[1:], *self.wh, self.wo]
        if not all(np.isfinite(a).all() for a in halves):
            # A weight (or a folded input table) past float16's 65504 became inf: the kernel
            # would answer NaN for every row. Refused here; "auto" then steps in NumPy.
            raise Float16Overflow(
                "the model's weights exceed float16's range (|w| > 65504), which the compiled "
                "kernel stores them in; use the numpy decoder"
            )
        self._wx_ptrs = (_P * L)(*[w.ctypes.data for w in self.wx])
        self._wh_ptrs = (_P * L)(*[w.ctypes.data for w in self.wh])
        self._model = _Model(
            L,
            Hp,
            G,
            self.Vp,
            threads,
            self.vocab_size,
            config.max_boxes,
            len(self.char_box_in),
            len(self.template_in),
            self.char_box_in.ctypes.data,
            self.template_in.ctypes.data,
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
        """One character for each row: ids [B] -> (log-probabilities [B,V] with the special
        ids at -inf, new state [L,B,Hp])."""
        L, Hp, G, B = self.config.layers, self.hidden, self.G, len(chars)
        state = np.ascontiguousarray(state, dtype=np.float32)
        ids = [np.ascontiguousarray(a, dtype=np.int64) for a in (chars, boxes, slots)]
        if state.shape != (L, B, Hp) or any(a.shape != (B,) for a in ids):
            # the kernel trusts these shapes: refuse rather than read past a buffer
            raise ValueError(f"state {state.shape} and ids do not match {B} rows of ({L}, {Hp})")
        # One buffer per step (the layout memebot_gru_step expects): out | xin | logp
        arena = np.empty(B * (L * Hp + G + self.Vp), dtype=np.float32)
        out = arena[: L * B * Hp].reshape(L, B, Hp)
        logp = arena[(L * Hp + G) * B :].reshape(B, self.Vp)
        if B and self._fn(
            self._model_ref, B, *(a.ctypes.data for a in ids), state.ctypes.data, arena.ctypes.data
        ):
            raise ValueError("a character, box or template id is outside the model's tables")
        logp[:, :N_SPECIAL] = -np.inf  # padding, BOS and UNK are never generated
        return logp[:, : self.vocab_size], out
