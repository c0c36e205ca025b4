"""The vectorised row table (engine/decoding/rowtable.py) against the per-row rules and itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.decoding.batch import Batch
from engine.decoding.jobs import CaptionRequest, make_job
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import FORBID_END, FREE, PREFER_END, Decoding, rule_code
from engine.decoding.rowtable import BOX_LEN, BOXES, LENGTH, TARGET
from harness.factories import captions_alone

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> LoadedModel:
    return load_model(tiny_model)


@pytest.mark.parametrize("empty_ok", [False, True])
@pytest.mark.parametrize("max_len", [6, 12, 40])
def test_codes_match_the_per_row_rules(model: LoadedModel, empty_ok: bool, max_len: int) -> None:
    """Every reachable (boxes, box length, text length) state: the table's vectorised codes
    are the scalar rule's (pickers.rule_code, as beam jobs apply it), for 3-box captions."""
    req = CaptionRequest(
        "two-buttons", 3, max_len=max_len, allow_empty_boxes=empty_ok, decoding=Decoding("greedy")
    )
    jobs, states = [], []
    for boxes in range(3):
        for box_len in range(0, max_len):
            for extra in range(0, max_len - box_len):
                jobs.append(make_job(model, req))
                states.append((boxes, box_len, boxes + box_len + extra))
    batch = Batch(model)
    batch.add(jobs)
    v = batch.table.ints
    for i, (boxes, box_len, length) in enumerate(states):
        v[i, [BOXES, BOX_LEN, LENGTH]] = boxes, box_len, length
    got = batch.table.codes(v)
    for i, (boxes, box_len, length) in enumerate(states):
        want = rule_code(length, boxes, box_len, 0, 3, max_len, empty_ok)
        assert got[i] == want, (boxes, box_len, length)
    # with calibrated length targets too, against the scalar rule the lone-row path uses
    v[:, TARGET] = np.arange(len(states)) % 7
    got = batch.table.codes(v)
    for i, (boxes, box_len, length) in enumerate(states):
        want = rule_code(length, boxes, box_len, i % 7, 3, max_len, empty_ok)
        assert got[i] == want, (boxes, box_len, length, i % 7)


def test_calibrated_targets_set_the_codes(model: LoadedModel) -> None:
    batch = Batch(model)
    batch.add([make_job(model, CaptionRequest("two-buttons", 2, seed=s)) for s in range(20)])
    v = batch.table.ints
    assert (v[:, TARGET] >= 1).all()  # calibrated: every open box has a drawn length
    v[:, [BOX_LEN, LENGTH]] = 1, 1
    v[:, TARGET] = np.where(np.arange(20) % 2, 5, 1)
    codes = batch.table.codes(v)
    assert (codes[1::2] == FORBID_END).all() and (codes[::2] == PREFER_END).all()
    v[:, TARGET] = 0
    assert (batch.table.codes(v) == FREE).all()


def test_joining_mid_way_and_dropping_change_no_other_caption(model: LoadedModel) -> None:
    reqs = [
        CaptionRequest("two-buttons", 2, seed=11),
        CaptionRequest("success-kid", 2, seed=12, n=2, decoding=Decoding("top-k", top_k=5)),
        CaptionRequest("y-u-no", 2, seed=14, decoding=Decoding("beam", beam_width=3)),
        CaptionRequest("distracted-boyfriend", 3, seed=13, start="me|"),
    ]
    alone = captions_alone(model, reqs)
    jobs = [make_job(model, r) for r in reqs]
    doomed = make_job(model, CaptionRequest("two-buttons", 2, seed=99))
    batch = Batch(model)
    batch.add([jobs[0], doomed])
    for k in range(1, 4):  # the others join one step apart; one request is dropped
        batch.step()
        batch.add([jobs[k]])
        if k == 2:
            batch.drop([doomed])
    while not batch.empty:
        batch.step()
    assert [[c.boxes for c in j.captions()] for j in jobs] == alone
    assert len(alone[1]) == 2 and alone[3][0][0] == "me"
    assert not doomed.results and len(batch.table) == 0


@pytest.mark.parametrize("together", [False, True])
@pytest.mark.parametrize(("start", "begins_a_word"), [("i am ", True), ("i am", False)])
def test_the_first_pick_after_a_start_text_sees_its_last_character(
    model: LoadedModel, start: str, begins_a_word: bool, together: bool
) -> None:
    """`natural` draws a word's first character from its wide nucleus and the rest of a word
    from the narrow one: after a start text ending in a space the first pick begins a word,
    after one ending in a letter it goes on with that word (alone: the lone-row path; together:
    the batched one)."""
    from engine.decoding.batch import run_jobs
    from memebot.caption_format import BOX_END

    d = Decoding("natural", word_top_p=1e-6)  # inside a word: the top character only
    reqs = [CaptionRequest("two-buttons", 2, start=start, decoding=d, seed=s) for s in range(40)]
    jobs = [make_job(model, r) for r in reqs]
    if together:
        run_jobs(model, jobs)
    else:
        for job in jobs:
            run_jobs(model, [job])
    firsts = {BOX_END.join(j.captions()[0].boxes)[len(start)] for j in jobs}
    assert (len(firsts) > 1) == begins_a_word, firsts
