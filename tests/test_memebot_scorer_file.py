"""The scorer file both the crowd's scorer and servers' tastes use (memebot/scorer_file.py):
a round trip keeps the rounded weights exactly, weights float16 cannot hold are refused before
anything is written, and a failed write leaves neither the file nor a temp file behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memebot.errors import ScorerError
from memebot.ngrams import FEATURES_VERSION
from memebot.scorer_file import read_scorer, rounded, weights_sha256, write_scorer


def _header(w: np.ndarray, bias: float, **extra: object) -> dict[str, object]:
    return {
        "format": "test-scorer",
        "format_version": 3,
        "features": FEATURES_VERSION,
        "n_buckets": len(w),
        "weights_sha256": weights_sha256(w, np.array([bias], np.float32)),
        **extra,
    }


def test_round_trip_keeps_rounded_weights_and_the_callers_fields(tmp_path: Path) -> None:
    w = rounded(np.random.default_rng(0).normal(0, 1, 64))
    path = tmp_path / "s.npz"
    write_scorer(path, w, 0.5, _header(w, 0.5, guild_id=7))
    got, bias, h = read_scorer(path, what="a test file", format="test-scorer", format_version=3)
    assert got.dtype == np.float32 and np.array_equal(got, w) and bias == 0.5
    assert h["guild_id"] == 7
    assert (path.stat().st_mode & 0o777) == 0o644
    with pytest.raises(ScorerError, match="format 'test-scorer' version 3"):
        read_scorer(path, what="a test file", format="test-scorer", format_version=4)


@pytest.mark.parametrize("bad", [np.inf, np.nan, 7e4])
def test_weights_float16_cannot_hold_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="float16"):
        rounded(np.array([0.0, bad]))


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    w = rounded(np.zeros(8))
    with pytest.raises(TypeError):
        write_scorer(path, w, 0.0, {"not json": object()})
    assert list(tmp_path.iterdir()) == []
