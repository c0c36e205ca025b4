"""Hashed caption features (memebot/ngrams.py): the grams they count, a hash that is the same
in every process, the batch equal to captions one by one, and their speed."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from memebot.ngrams import N_BUCKETS, hash_features, normalise

CAPTIONS = [
    "when you finally finish your homework|and the teacher says it was optional|",
    "me|my homework|the new season of my show|",
    "aaaand it's gone|",
    "",
    "Ünïcode  stays | bytes|",
]


def _row(h: object, i: int) -> dict[int, float]:
    from memebot.ngrams import Hashed

    assert isinstance(h, Hashed)
    out: dict[int, float] = {}
    lo, hi = h.indptr[i], h.indptr[i + 1]
    for b, v in zip(h.indices[lo:hi], h.values[lo:hi], strict=True):
        out[int(b)] = out.get(int(b), 0.0) + float(v)
    return out


def test_shape_and_dtypes() -> None:
    h = hash_features(CAPTIONS)
    assert h.rows == len(CAPTIONS) and h.n_buckets == N_BUCKETS
    assert h.indptr.dtype == np.int64 and h.indices.dtype == np.int32
    assert h.values.dtype == np.float32
    assert (h.indices >= 0).all() and (h.indices < N_BUCKETS).all()
    assert h.to_dense().shape == (len(CAPTIONS), N_BUCKETS)


def test_gram_counts() -> None:
    # "ab|": words | ab | (3 unigrams, 2 bigrams); chars of "|ab|": 2 trigrams, 1 four-gram
    h = hash_features(["ab|"])
    assert h.indptr[1] == 3 + 2 + 2 + 1
    assert np.allclose(h.values, 1 / np.sqrt(8))


def test_batch_equals_one_by_one() -> None:
    batch = hash_features(CAPTIONS)
    for i, c in enumerate(CAPTIONS):
        assert _row(batch, i) == pytest.approx(_row(hash_features([c]), 0))


def test_display_form_and_case_give_the_same_features() -> None:
    a, b = hash_features(["Me | my  HOMEWORK |", "me|my homework|"]).to_dense()
    assert np.array_equal(a, b)
    assert normalise("  Me |  my HOMEWORK  | ") == "me|my homework|"


def test_box_boundary_is_a_feature() -> None:
    a, b = hash_features(["my dog|my cat|", "my dog my cat|"]).to_dense()
    assert not np.array_equal(a, b)


def test_hash_is_stable_across_processes() -> None:
    """Python salts str hashes per process; these buckets must not move (a fitted weight
    vector depends on them), so a child with another PYTHONHASHSEED gets the same rows."""
    code = (
        "from memebot.ngrams import hash_features;"
        f"h=hash_features({CAPTIONS!r});"
        "print(h.indices.tolist(), h.values.tolist())"
    )
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(subprocess.check_output([sys.executable, "-c", code], env=env, text=True))
    assert len(outs) == 1
    h = hash_features(CAPTIONS)
    assert outs.pop().strip() == f"{h.indices.tolist()} {h.values.tolist()}"
    # Pinned: a change of the hash must come with a new FEATURES_VERSION.
    assert zlib.crc32(h.indices.tobytes()) == PINNED_CRC


PINNED_CRC = 3452537939


def test_dot_matches_dense() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=N_BUCKETS).astype(np.float32)
    h = hash_features(CAPTIONS)
    assert np.allclose(h.dot(w), h.to_dense() @ w, atol=1e-5)
    with pytest.raises(ValueError):
        h.dot(w[:10])


def test_empty_batch_and_other_bucket_counts() -> None:
    assert hash_features([]).rows == 0
    assert (hash_features(CAPTIONS, 1 << 10).indices < 1 << 10).all()
    with pytest.raises(ValueError):
        hash_features(CAPTIONS, 1000)
