"""The repetition guard (engine/decoding/repeats.py): no caption writes a mark more than
MAX_MARK_RUN times in a row, whatever the method; rows below the limit pick as without it."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.decoding import repeats, tilt
from engine.decoding.batch import run_jobs
from engine.decoding.jobs import CaptionRequest, make_job
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel, log_softmax
from engine.decoding.pickers import Decoding
from harness.factories import captions_alone
from memebot.decoding import METHODS
from memebot.settings import REPO_ROOT, Settings

SHIPPED = REPO_ROOT / "models" / "default"
LIMIT = repeats.MAX_MARK_RUN
MARK_RUN = rf"([^a-z0-9 |])\1{{{LIMIT},}}"  # a mark more than LIMIT times in a row
TOO_LONG = re.compile(MARK_RUN)


def test_marks_are_neither_letters_digits_spaces_nor_the_marker() -> None:
    assert [repeats.is_mark(c) for c in "!?.*-'"] == [True] * 6
    assert [repeats.is_mark(c) for c in ["a", "é", "0", " ", "|", "", "ab"]] == [False] * 7
    assert repeats.marks(["", "", "?", "a", "!"]).tolist() == [False, False, True, False, True]


def test_tail_run_counts_the_last_item_in_a_row() -> None:
    assert repeats.tail_run("wow!!!") == ("!", 3)
    assert repeats.tail_run([5, 7, 7]) == (7, 2)
    assert repeats.tail_run("a") == ("a", 1)
    assert repeats.tail_run("") == (None, 0)


def test_forbid_masks_only_a_mark_at_the_limit() -> None:
    logp = np.log(np.full((4, 5), 0.2))
    mark = np.array([False, False, True, True, False])
    # rows: a mark at the limit, a mark below it, a letter at the limit, no character yet
    last = np.array([2, 3, 4, -1])
    run = np.array([LIMIT, LIMIT - 1, LIMIT + 2, 0])
    out = repeats.forbid(logp, last, run, mark)
    assert np.isneginf(out[0, 2]) and np.isfinite(np.delete(out[0], 2)).all()
    assert np.array_equal(out[1:], logp[1:])
    assert np.isfinite(logp).all()  # its input untouched
    # no row at the limit: the very same array (no copy, nothing changed)
    below = logp[1:]
    assert repeats.forbid(below, last[1:], run[1:], mark) is below


def test_forbid_leaves_a_row_its_only_candidate() -> None:
    logp = np.full((1, 4), -np.inf)
    logp[0, 2] = 0.0
    out = repeats.forbid(logp, np.array([2]), np.array([LIMIT]), np.ones(4, dtype=bool))
    assert out[0, 2] == 0.0


def test_follow_counts_runs_per_row() -> None:
    last, run = np.array([4, 4, -1]), np.array([2, 1, 0])
    chars, run = repeats.follow(last, run, np.array([4, 5, 7]))
    assert chars.tolist() == [4, 5, 7] and run.tolist() == [3, 1, 1]


class _Bang:
    """A stepper whose every step strongly favours `!`, then a letter, a space and the box
    marker: left alone, most methods write `!!!!!!!!` to the end of each box."""

    returns_logp = False
    backend = "numpy"

    def __init__(self, model: LoadedModel):
        v = model.vocab
        self.logits = np.full(v.size, -4.0)
        self.logits[[v.id_of("!"), v.id_of("a"), v.space_id, v.box_end_id]] = [8, 5, 4, 3]

    def condition(self, entry: Any) -> int:
        return 0

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((batch, 1))

    def take_state(self, state: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return state[idx]

    def concat_states(self, states: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(states)

    def step(
        self, state: np.ndarray, chars: np.ndarray, boxes: np.ndarray, conds: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.tile(self.logits, (len(chars), 1)), state


def _taste() -> tilt.TasteTilt:
    """A server's taste (random gram weights) tilting its rows' picks."""
    weights = np.random.default_rng(0).normal(0, 1.0, 1 << 12).astype(np.float32)
    t = tilt.tilt_of(weights, 40.0)
    assert t is not None
    return t


@pytest.fixture(scope="module")
def bang() -> LoadedModel:
    model = load_model(SHIPPED, decoder="numpy", crowd_weight=0)
    return replace(model, stepper=_Bang(model))


def _captions(model: LoadedModel, method: str, start: str = "", n: int = 6) -> list[str]:
    req = CaptionRequest("drake", 2, start=start, decoding=Decoding(method), seed=7, n=n)
    job = make_job(model, req)
    run_jobs(model, [job])
    return [c.text for c in job.captions()]


@pytest.mark.parametrize("method", METHODS)
def test_no_method_writes_a_mark_more_than_the_limit(
    bang: LoadedModel, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = _captions(bang, method) + _captions(bang, method, n=1)  # batched and lone rows
    assert texts and not any(TOO_LONG.search(t) for t in texts), texts
    assert any("!" * LIMIT in t for t in texts)  # it still writes marks, up to the limit
    monkeypatch.setattr(repeats, "MAX_MARK_RUN", 10**6)  # the guard off: the runs it stops
    assert any(TOO_LONG.search(t) for t in _captions(bang, method))


@pytest.mark.parametrize("method", ["natural", "greedy", "beam"])
def test_the_start_texts_run_counts(bang: LoadedModel, method: str) -> None:
    start = "wow" + "!" * LIMIT
    for text in _captions(bang, method, start=start, n=3):
        assert text.startswith(start) and text[len(start)] != "!", text


def test_batched_equals_unbatched_with_the_guard(bang: LoadedModel) -> None:
    reqs = [
        CaptionRequest("drake", 2, decoding=Decoding("natural"), seed=1, n=3),
        CaptionRequest("drake", 2, start="no!!", decoding=Decoding("natural"), seed=2),
        CaptionRequest("two-buttons", 3, decoding=Decoding("greedy"), seed=3),
        CaptionRequest("drake", 2, decoding=Decoding("beam", beam_width=3), seed=4, n=2),
        CaptionRequest("drake", 2, decoding=Decoding("calibrated"), seed=5, n_candidates=3),
        CaptionRequest("drake", 2, decoding=Decoding("natural"), seed=6, n=2, tilt=_taste()),
    ]
    alone = captions_alone(bang, reqs)
    jobs = [make_job(bang, r) for r in reqs]
    run_jobs(bang, jobs)
    assert [[c.boxes for c in j.captions()] for j in jobs] == alone


def test_a_captions_log_probability_stays_the_models(bang: LoadedModel) -> None:
    # the guard changes what is picked, not what a pick is worth
    lp = log_softmax(bang.stepper.logits[None])[0]  # type: ignore[attr-defined]
    lp[:3] = -np.inf
    vocab = bang.vocab
    job = make_job(bang, CaptionRequest("drake", 2, decoding=Decoding("greedy"), seed=0))
    run_jobs(bang, [job])
    (c,) = job.captions()
    assert TOO_LONG.search(c.text) is None and "!" * LIMIT in c.text
    assert c.logprob == pytest.approx(sum(lp[vocab.id_of(ch)] for ch in c.text))


def test_redraw_is_uniform_within_any_share_of_the_draw() -> None:
    # the draws that picked a mark lie in its share of [0, 1); their redraws spread over [0, 1)
    u = np.random.default_rng(0).uniform(0.31, 0.32, size=(20000, 2))
    r = repeats.redraw(u)
    assert np.array_equal(r[:, 0], u[:, 0]) and ((r[:, 1] >= 0) & (r[:, 1] < 1)).all()
    counts = np.histogram(r[:, 1], bins=10, range=(0, 1))[0]
    assert counts.min() > 0.9 * 2000 and counts.max() < 1.1 * 2000


def test_at_limit_and_settle_keep_the_second_pick_only_for_the_mark() -> None:
    mark = np.array([False, True, True, False])
    # rows: a mark at the limit (x2), a mark below it, a letter past it, none yet
    last, run = np.array([1, 2, 1, 3, -1]), np.array([LIMIT, LIMIT + 1, LIMIT - 1, LIMIT + 5, 0])
    at = repeats.at_limit(last, run, mark)
    assert at.tolist() == [0, 1]
    # first picks: row 0 the mark again, row 1 something else; then the masked picks of both
    picks = np.array([1, 0, 1, 3, 0, 3, 2])
    assert repeats.settle(picks, at, last).tolist() == [3, 0, 1, 3, 0]


def test_doubled_rows_mask_the_mark_in_the_second_copy_only() -> None:
    lp = np.log(np.full((3, 4), 0.25))
    lp[2, :] = [-np.inf, -np.inf, 0.0, -np.inf]  # its mark is its only candidate
    u = np.random.default_rng(1).random((3, 2))
    last, at = np.array([1, 0, 2]), np.array([0, 2])
    ext, lp2, u2 = repeats.doubled(lp, u, at, last)
    assert ext.tolist() == [0, 1, 2, 0, 2]
    assert np.array_equal(lp2[:3], lp) and np.array_equal(u2[:3], u)
    assert np.isneginf(lp2[3, 1]) and np.isfinite(np.delete(lp2[3], 1)).all()
    assert np.array_equal(lp2[4], lp[2])  # kept: no row is left without a candidate
    assert np.array_equal(u2[3:], repeats.redraw(u[at]))


@pytest.mark.parametrize("batched", [False, True])
def test_only_a_row_that_draws_a_fourth_mark_picks_again(
    bang: LoadedModel, monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    """Plain sampling after `no!!!`: rows that draw something else write what they write
    without the guard; rows that draw `!` write another character, in proportion to the
    model's probabilities among the rest. Each request alone (RowTable._step_one), or all in
    one batch with rows of another decoding below the limit (RowTable._pick)."""
    req = CaptionRequest("drake", 1, start="no!!!", max_len=8, decoding=Decoding("temperature"))
    other = CaptionRequest("drake", 2, decoding=Decoding("natural"), seed=99, n=40)

    def first_chars(reqs: list[CaptionRequest]) -> list[str]:  # after the start ("|": none)
        jobs = [make_job(bang, r) for r in reqs]
        if batched:
            run_jobs(bang, [*jobs, make_job(bang, other)])
        else:
            for job in jobs:
                run_jobs(bang, [job])
        return [(j.captions()[0].text + "|")[len(req.start)] for j in jobs]

    reqs = [replace(req, seed=s) for s in range(1500)]
    guarded = first_chars(reqs)
    monkeypatch.setattr(repeats, "MAX_MARK_RUN", 10**6)
    free = first_chars(reqs)
    assert "!" not in guarded and free.count("!") > 0.8 * len(free)
    assert all(g == f for g, f in zip(guarded, free, strict=True) if f != "!")
    again = [g for g, f in zip(guarded, free, strict=True) if f == "!"]
    logits = bang.stepper.logits  # type: ignore[attr-defined]
    want = np.exp(logits[bang.vocab.id_of("a")] - logits[bang.vocab.space_id])  # e^1
    assert again.count("a") / again.count(" ") == pytest.approx(want, rel=0.2)


def _share(captions: list[tuple[str, ...]], pattern: str) -> float:
    run = re.compile(pattern)
    return sum(bool(run.search("|".join(c))) for c in captions) / len(captions)


LETTER_RUN = r"([a-z])\1{3,}"  # a letter four or more times in a row (`aaaaand`)


@pytest.mark.slow
@pytest.mark.realdata
def test_the_default_styles_runs_against_real_captions(
    real_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 captions of the bot's default style over the 25 largest templates, against every
    real caption of those templates: no run of marks past the limit (real captions: about 1%
    of them), letter runs no more often than people write them, and every caption the model
    writes without such a run the same with the guard as without it."""
    from bench.caption_stats import generate, reference
    from bot.memes import STYLE_OPTIONS
    from engine.service import load_engine_model
    from memebot.choices import DEFAULT_STYLE
    from training.prepare import prepare

    settings = Settings.from_env()
    model = load_engine_model(settings, SHIPPED, warm=False)
    prepared = prepare(real_data_dir, cache_dir=settings.cache_dir)
    ref = reference(prepared, model, per_template=1)
    real = [c for cs in ref.every.values() for c in cs]
    options = STYLE_OPTIONS[DEFAULT_STYLE]
    guarded = [c for cs in generate(model, ref, options, 40).values() for c in cs]
    assert len(guarded) == 1000
    assert _share(guarded, MARK_RUN) == 0 < _share(real, MARK_RUN)
    assert _share(guarded, LETTER_RUN) <= 1.5 * _share(real, LETTER_RUN)
    monkeypatch.setattr(repeats, "MAX_MARK_RUN", 10**6)
    free = [c for cs in generate(model, ref, options, 40).values() for c in cs]
    assert _share(free, MARK_RUN) > _share(real, MARK_RUN)  # what the guard is for
    run = re.compile(MARK_RUN)
    same = [g == f for g, f in zip(guarded, free, strict=True) if not run.search("|".join(f))]
    assert len(same) > 500 and all(same)
