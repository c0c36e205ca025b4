"""A taste's tilt through the compiled loop (`_tilt_step.c`): what tilt.py computes, per step.

tilt.py's NumPy code is the definition and the fallback where the C file was not built (no
compiler at install). At 64 tilted rows a step there is a few hundred NumPy calls (~0.3-0.5 ms,
near the model's own step); the loop over the same (row, candidate) pairs is a few
microseconds. Unlike the char-gru kernel it has nothing machine-specific to lose on a CPU
without AVX-512, so it is used wherever it loads.
"""

from __future__ import annotations

import ctypes
import importlib.util
from functools import cache
from typing import Any

import numpy as np

from memebot.ngrams import CHAR_NS, HASH_P, MIX_M1, MIX_M2, SALT_BI, SALT_CHAR, SALT_UNI

__all__ = ["available", "follow", "weigh_near"]

_MODULE = "engine.decoding._tilt_step"
_P = ctypes.c_void_p
assert CHAR_NS == (3, 4, 5), "_tilt_step.c hashes character 3-, 4- and 5-grams"


class _Consts(ctypes.Structure):
    """`tilt_consts` in _tilt_step.c."""

    _fields_ = [
        ("p", ctypes.c_uint64),
        ("salt", ctypes.c_uint64 * 3),
        ("uni", ctypes.c_uint64),
        ("bi", ctypes.c_uint64),
        ("m1", ctypes.c_uint64),
        ("m2", ctypes.c_uint64),
    ]


@cache
def _library() -> Any:
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.origin:
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    i64 = ctypes.c_int64
    lib.memebot_tilt_weigh.argtypes = [_P, i64, i64, _P, _P, _P, i64, *[_P] * 8, i64, _P, i64, _P]
    lib.memebot_tilt_weigh.restype = None
    lib.memebot_tilt_follow.argtypes = [_P, i64, _P, _P, _P, _P, _P, _P, i64]
    lib.memebot_tilt_follow.restype = None
    return lib


@cache
def _consts() -> _Consts:
    salts = (ctypes.c_uint64 * 3)(*(int(SALT_CHAR[n]) for n in CHAR_NS))
    return _Consts(HASH_P, salts, int(SALT_UNI), int(SALT_BI), int(MIX_M1), int(MIX_M2))


def available() -> bool:
    """True when the compiled loop was built and loads on this machine."""
    return _library() is not None


def _ptr(a: np.ndarray, dtype: Any) -> int:
    # every array reaches C as is: a copy here would lose the in-place writes
    assert a.dtype == dtype and a.flags.c_contiguous, (a.dtype, a.flags)
    return int(a.__array_interface__["data"][0])  # half the cost of a.ctypes.data


def weigh_near(
    lp: np.ndarray,
    thr: np.ndarray,
    forbid: np.ndarray,
    end_id: int,
    cand: np.ndarray,
    rows: np.ndarray,
    o: np.ndarray,
    states: np.ndarray,
    slots: np.ndarray,
    masks: np.ndarray,
    strength: np.ndarray,
    table: np.ndarray,
    seen: np.ndarray,
    out: np.ndarray,
) -> None:
    """Into `out[o[i]]` [*, V] (float64, in place): for tilted row i (`rows[i]` of `states`
    [*, WIDTH], `slots`, `seen` [*, buckets]) and each candidate j with a byte (`cand` [V])
    whose `lp[i, j]` reaches `thr[i]` (not `end_id` where `forbid[i]`), the taste's
    `strength * weigh` (tilt.weigh's sum). Cells of other candidates are left as they are."""
    lib = _library()
    n, v = lp.shape
    lib.memebot_tilt_weigh(
        ctypes.byref(_consts()),
        n,
        v,
        _ptr(lp, np.float64),
        _ptr(thr, np.float64),
        _ptr(forbid, np.bool_),
        end_id,
        _ptr(cand, np.int64),
        _ptr(rows, np.int64),
        _ptr(o, np.int64),
        _ptr(states, np.int64),
        _ptr(slots, np.int64),
        _ptr(masks, np.uint64),
        _ptr(strength, np.float32),
        _ptr(table, np.float32),
        table.shape[1],
        _ptr(seen, np.bool_),
        seen.shape[1],
        _ptr(out, np.float64),
    )


def follow(
    rows: np.ndarray,
    c: np.ndarray,
    states: np.ndarray,
    slots: np.ndarray,
    masks: np.ndarray,
    seen: np.ndarray,
) -> None:
    """Rows `rows` of `states` and `seen` (in place) after their picked bytes `c` (each >= 0):
    tilt.mark then tilt.append."""
    lib = _library()
    lib.memebot_tilt_follow(
        ctypes.byref(_consts()),
        len(rows),
        _ptr(rows, np.int64),
        _ptr(c, np.int64),
        _ptr(states, np.int64),
        _ptr(slots, np.int64),
        _ptr(masks, np.uint64),
        _ptr(seen, np.bool_),
        seen.shape[1],
    )
