"""The taste's tilt through the compiled loop (engine/decoding/_tilt_step.c) is tilt.py's NumPy
definition: the same sums over the same candidates, the same state and paid-out grams after a
pick, and the same captions from the row table with and without it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.decoding import tilt, tilt_kernel
from engine.decoding.batch import run_jobs
from engine.decoding.jobs import CaptionRequest, make_job
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from harness.factories import tilt_states
from harness.skips import skip_or_fail

PREFIXES = ["when you", "", "me |", "i'm  done. ", "what", "a b c d e", "x|y ", "hello world"]
# every byte class: letters, digits, `'`, space, `|`, marks, and no byte (-1)
CANDS = np.array([ord(ch) for ch in " ?|a'.-z9!e,"] + [-1], dtype=np.int64)


@pytest.fixture(autouse=True)
def _built() -> None:
    if not tilt_kernel.available():
        skip_or_fail("the compiled tilt loop was not built (no C compiler at install?)")


def test_weigh_near_is_the_numpy_weigh_on_the_candidates_it_reaches() -> None:
    rng = np.random.default_rng(1)
    n_slots, width = 3, 1 << 12
    table = rng.normal(size=(n_slots, width)).astype(np.float32)
    masks = np.array([4095, 255, 1023], dtype=np.uint64)  # tastes of fewer buckets too
    strength = np.array([0.5, 2.0, 7.9], dtype=np.float32)
    states = tilt_states(PREFIXES)
    slots = np.arange(len(PREFIXES), dtype=np.int64) % n_slots
    seen = rng.random((len(PREFIXES), width)) < 0.3
    # tilted rows 1, 3, ..., written to rows 0, 1, ... of out
    rows = np.arange(1, len(PREFIXES), 2, dtype=np.int64)
    o = np.arange(len(rows), dtype=np.int64)
    lp = rng.normal(size=(len(rows), len(CANDS)))
    thr = np.quantile(lp, 0.4, axis=1)
    forbid = np.array([True, False, True, False][: len(rows)])
    end_id = list(CANDS).index(ord("|"))
    out = np.zeros((len(rows), len(CANDS)))
    tilt_kernel.weigh_near(
        lp, thr, forbid, end_id, CANDS, rows, o, states, slots, masks, strength, table, seen, out
    )
    s = slots[rows]
    full = strength[s][:, None] * tilt.weigh(
        states[rows], CANDS[None, :], table, s, masks[s], seen, rows
    )
    reach = (lp >= thr[:, None]) & (CANDS >= 0)[None, :]
    reach[forbid, end_id] = False
    np.testing.assert_allclose(out[reach], full[reach], atol=1e-4)
    assert (out[~reach] == 0).all()  # cells it does not reach are left alone
    assert (out[reach] != 0).mean() > 0.5  # ... and the ones it reaches are weighed


def test_follow_is_mark_then_append() -> None:
    rng = np.random.default_rng(2)
    width = 1 << 10
    masks = np.array([1023, 127], dtype=np.uint64)
    states = tilt_states(PREFIXES)
    ref_states = states.copy()
    slots = np.arange(len(PREFIXES), dtype=np.int64) % 2
    seen = np.zeros((len(PREFIXES), width), dtype=bool)
    ref_seen = seen.copy()
    rows = np.array([0, 2, 3, 5, 6, 7], dtype=np.int64)
    text = [b for b in CANDS if b >= 0]
    for _ in range(60):  # a caption's worth of steps, every byte class among them
        c = rng.choice(text, len(rows)).astype(np.int64)
        tilt_kernel.follow(rows, c, states, slots, masks, seen)
        st, sn = ref_states[rows], ref_seen[rows]
        tilt.mark(st, c, masks[slots[rows]], sn)
        tilt.append(st, c)
        ref_states[rows], ref_seen[rows] = st, sn
        assert (states == ref_states).all()
        assert (seen == ref_seen).all()
    assert seen.any()


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> LoadedModel:
    return load_model(tiny_model)


def _captions(model: LoadedModel, method: str) -> list[list[str]]:
    rng = np.random.default_rng(4)
    tastes = [tilt.tilt_of(rng.normal(0, 1.0, 1 << 12).astype(np.float32), 60.0) for _ in range(3)]
    base = CaptionRequest("two-buttons", 2, decoding=Decoding(method))
    reqs = [replace(base, seed=s, tilt=tastes[s % 3] if s % 4 else None) for s in range(24)]
    jobs = [make_job(model, r) for r in reqs]
    run_jobs(model, jobs)  # one batch: tilted and untilted rows, three tastes
    return [c.boxes for j in jobs for c in j.captions()]


@pytest.mark.parametrize("method", ["natural", "calibrated", "temperature"])
def test_the_row_table_writes_the_same_captions_with_the_loop_or_numpy(
    model: LoadedModel, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = _captions(model, method)
    monkeypatch.setattr(tilt_kernel, "available", lambda: False)
    assert _captions(model, method) == compiled
