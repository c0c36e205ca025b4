"""Hashed n-gram features of captions (NumPy + stdlib only): what the text scorers learn on.

A caption (`box|box|`, or boxes joined by ` | `) is lowercased, its whitespace collapsed and
the spaces around each box boundary dropped, so both forms give the same features; then

- word unigrams and bigrams: words are runs of `[a-z0-9']`, and the box boundary `|` is a
  word of its own (the bigram `homework |` says a box ends on "homework");
- character 3-, 4- and 5-grams of `|` + the text, punctuation and boundaries included (the
  leading `|` marks the caption's start, as the trailing one marks its end),

each hashed into one of `n_buckets` (2^16) buckets. The hash is the same on every machine and
in every process (a polynomial hash of the UTF-8 bytes mod 2^64, then splitmix64's finaliser;
never Python's salted `hash()`), since a fitted weight vector is only meaningful with the same
hash. Every gram of a caption counts 1 (a repeated gram adds up) and the row is scaled by
1 / sqrt(its number of grams), so that long captions do not score high by length alone.

The whole batch is one byte string and every step after the normalising regexes is a NumPy
pass over it: ~16 µs a caption in a batch of 8 on a 2-core development machine, ~90 µs for a
caption alone (the passes' fixed cost); tests/test_memebot_ngrams.py holds it under 100 µs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memebot.caption_format import BOX_END

# Part of a fitted scorer's identity: change it whenever the features change.
FEATURES_VERSION = "ngrams-v1"
N_BUCKETS = 1 << 16
CHAR_NS = (3, 4, 5)

_SEP = "\x00"  # between the captions of a batch; never part of a gram
_WS = re.compile(r"[^\S\x00]+")  # whitespace, but not the separator
_U64 = np.uint64
_MASK = (1 << 64) - 1
_P = 0x100000001B3  # odd, so it has an inverse mod 2^64
_P_INV = pow(_P, -1, 1 << 64)
_M1, _M2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
# Salts keep the kinds of gram apart in the shared buckets.
_SALT_UNI, _SALT_BI = _U64(0x9E3779B97F4A7C15), _U64(0xD1B54A32D192ED03)
_SALT_CHAR = {n: _U64(0xA0761D6478BD642F * n & _MASK) for n in CHAR_NS}
_ORD_PIPE, _ORD_SEP, _ORD_QUOTE = ord(BOX_END), 0, ord("'")


def normalise(text: str) -> str:
    """The form features are taken from: lowercase, single spaces, no spaces around `|`."""
    return _normalise(text.replace(_SEP, " "))


def _normalise(text: str) -> str:  # keeps the batch's separators
    text = _WS.sub(" ", text.lower())  # then at most one space beside a `|` or separator
    for mark in (BOX_END, _SEP):
        text = text.replace(" " + mark, mark).replace(mark + " ", mark)
    return text.strip()


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    z = z ^ (z >> _U64(30))
    z = z * _M1
    z = z ^ (z >> _U64(27))
    z = z * _M2
    return z ^ (z >> _U64(31))


def _powers(base: int, n: int) -> np.ndarray:
    """base^0 .. base^(n-1) mod 2^64."""
    out = np.full(n, base, dtype=_U64)
    out[0] = 1
    return np.cumprod(out, dtype=_U64)


# Powers of P and P^-1 for batches up to this many bytes, computed once (a batch longer than
# that computes its own): a request's few captions then pay for no cumprod.
_POWERS_LEN = 1 << 14
_P_POW, _P_INV_POW = _powers(_P, _POWERS_LEN + 1), _powers(_P_INV, _POWERS_LEN + 1)


@dataclass(frozen=True)
class Hashed:
    """Sparse rows in CSR form: row i's buckets are `indices[indptr[i]:indptr[i+1]]` with
    `values` at the same places. A bucket may repeat within a row (repeats add up); scipy's
    `csr_matrix((values, indices, indptr), shape=(rows, n_buckets))` takes it as is."""

    indptr: np.ndarray  # int64 [rows + 1]
    indices: np.ndarray  # int32 [nnz]
    values: np.ndarray  # float32 [nnz]
    n_buckets: int

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def row_ids(self) -> np.ndarray:
        """The row of every stored value [nnz]."""
        return np.repeat(np.arange(self.rows), np.diff(self.indptr))

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """Each row times a weight vector [n_buckets] -> float32 [rows]."""
        if weights.shape != (self.n_buckets,):
            raise ValueError(f"weights of shape {weights.shape}, features have {self.n_buckets}")
        prod = self.values * weights[self.indices].astype(np.float32)
        return np.bincount(self.row_ids(), weights=prod, minlength=self.rows).astype(np.float32)

    def to_dense(self) -> np.ndarray:
        out = np.zeros((self.rows, self.n_buckets), dtype=np.float32)
        np.add.at(out, (self.row_ids(), self.indices), self.values)
        return out


def hash_features(texts: Sequence[str], n_buckets: int = N_BUCKETS) -> Hashed:
    """The hashed n-gram rows of `texts` (one row each, in order)."""
    if n_buckets < 1 or n_buckets & (n_buckets - 1):
        raise ValueError(f"n_buckets must be a power of two, got {n_buckets}")
    n_texts = len(texts)
    if not n_texts:
        empty = np.zeros(0, np.int32), np.zeros(0, np.float32)
        return Hashed(np.zeros(1, np.int64), *empty, n_buckets)
    # One string for the batch, each caption led by `|` (its start) and closed by the separator.
    joined = _normalise(_SEP.join(t.replace(_SEP, " ") for t in texts) + _SEP)
    joined = BOX_END + joined.replace(_SEP, _SEP + BOX_END)[:-1]
    b = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
    n = len(b)
    sep = b == _ORD_SEP
    row = np.cumsum(sep) - sep  # the caption of every byte (a separator: the one it closes)
    # Polynomial hash of any span [s, e): P^(e-1) * (S[e] - S[s]), S the prefix sums of
    # (byte + 1) * P^-i, all mod 2^64 (NumPy's uint64 arithmetic wraps).
    short = n <= _POWERS_LEN
    inv_pow = _P_INV_POW[:n] if short else _powers(_P_INV, n)
    p_pow = _P_POW[: n + 1] if short else _powers(_P, n + 1)
    S = np.zeros(n + 1, dtype=_U64)
    np.cumsum((b.astype(_U64) + _U64(1)) * inv_pow, dtype=_U64, out=S[1:])

    def span(s: np.ndarray, e: np.ndarray) -> np.ndarray:
        return p_pow[e - 1] * (S[e] - S[s])

    rows, hashes = [], []
    seps_before = np.concatenate([[0], np.cumsum(sep)])
    for k in CHAR_NS:
        s = np.arange(n - k + 1)
        s = s[seps_before[s + k] == seps_before[s]]  # no separator inside
        rows.append(row[s])
        hashes.append(span(s, s + k) ^ _SALT_CHAR[k])
    # Words: runs of [a-z0-9'], and every `|` a word of its own.
    in_word = ((b >= 97) & (b <= 122)) | ((b >= 48) & (b <= 57)) | (b == _ORD_QUOTE)
    edges = np.diff(np.concatenate([[False], in_word, [False]]).astype(np.int8))
    w_start, w_end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    pipes = np.flatnonzero(b == _ORD_PIPE)
    starts = np.concatenate([w_start, pipes])
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], np.concatenate([w_end, pipes + 1])[order]
    wh = span(starts, ends)
    w_row = row[starts]
    same = w_row[1:] == w_row[:-1]  # bigrams never cross captions
    rows += [w_row, w_row[1:][same]]
    hashes += [wh ^ _SALT_UNI, ((wh[:-1] * _U64(_P) ^ wh[1:]) ^ _SALT_BI)[same]]
    all_rows = np.concatenate(rows)
    mixed = _mix(np.concatenate(hashes))  # one pass for every kind of gram
    if n_texts > 1:  # rows in order (each kind of gram came in order of its own)
        order = np.argsort(all_rows, kind="stable")
        all_rows, mixed = all_rows[order], mixed[order]
    buckets = (mixed & _U64(n_buckets - 1)).astype(np.int32)
    per_row = np.bincount(all_rows, minlength=n_texts)
    indptr = np.zeros(n_texts + 1, dtype=np.int64)
    np.cumsum(per_row, out=indptr[1:])
    values = (1.0 / np.sqrt(np.maximum(per_row, 1)))[all_rows].astype(np.float32)
    return Hashed(indptr, buckets, values, n_buckets)


# The hash's pieces, for code that hashes a caption's grams one character at a time as it is
# written (engine/decoding/tilt.py): the same buckets as hash_features, by construction.
HASH_P = _P
SALT_UNI, SALT_BI, SALT_CHAR = _SALT_UNI, _SALT_BI, _SALT_CHAR
mix = _mix
MIX_M1, MIX_M2 = _M1, _M2  # mix's multipliers (engine/decoding/_tilt_step.c takes them)
