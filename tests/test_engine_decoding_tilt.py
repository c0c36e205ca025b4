"""A server's taste tilting decoding (engine/decoding/tilt.py): the grams the steps complete are
hash_features' buckets, the tilt changes only its own request's captions, the same seed gives
the same caption, a row alone picks as in a batch, and the length factor shortens captions."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.decoding import tilt
from engine.decoding.batch import run_jobs
from engine.decoding.jobs import CaptionRequest, make_job
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from harness.factories import captions_alone, tilt_states
from memebot.ngrams import hash_features, mix

TEXTS = [
    "when you|eat pizza|",
    "Hello,  World? |  no way | ",
    "a||b|",
    "i'm  done.|what?!|",
    " x |y|",
    "ab|",
    "when the  |  x|",
    "me|my homework|the new season of my show|",
    "42 cats & 7 dogs?|-|",
]


def _stepwise(text: str, n_buckets: int) -> Counter[int]:
    """The buckets the tilt's steps complete while `text` is written, one character at a time
    (the leading `|`'s unigram, which every caption has, first)."""
    mask = np.uint64(n_buckets - 1)
    got = [int(mix(np.array([tilt.opening()], dtype=np.uint64))[0] & mask)]
    state = tilt.fresh(1)
    _, seqs = tilt.candidate_bytes(list(text))
    for b in b"".join(seqs):
        c = np.array([[b]], dtype=np.int64)
        for h, valid in tilt.grams(state, c):
            if np.broadcast_to(valid, (1, 1))[0, 0]:
                got.append(int(mix(np.broadcast_to(h, (1, 1)).copy())[0, 0] & mask))
        tilt.append(state, np.array([b], dtype=np.int64))
    return Counter(got)


@pytest.mark.parametrize("n_buckets", [1 << 12, 1 << 16])
def test_the_steps_complete_exactly_hash_features_buckets(n_buckets: int) -> None:
    for text in TEXTS:
        want = Counter(hash_features([text], n_buckets).indices.tolist())
        assert _stepwise(text, n_buckets) == want, text


def test_weigh_sums_each_rows_grams_by_its_own_weights() -> None:
    """weigh over [rows, candidates] at once, each row by its slot's weights and mask, is the
    sum of the weights of the grams each candidate completes (taken one by one)."""
    rng = np.random.default_rng(0)
    table = np.zeros((2, 1 << 12), dtype=np.float32)
    table[0] = rng.normal(size=1 << 12)
    table[1, :256] = rng.normal(size=256)  # a taste of fewer buckets
    masks = np.array([4095, 255], dtype=np.uint64)
    prefixes = ["when you", "", "me |", "i'm  done. ", "what"]
    state = tilt_states(prefixes)
    slot = np.arange(len(prefixes)) % 2
    cands = np.array([ord(ch) for ch in " ?|a'.-"] + [-1], dtype=np.int64)
    got = tilt.weigh(
        state, np.broadcast_to(cands, (len(prefixes), len(cands))), table, slot, masks[slot]
    )
    for i in range(len(prefixes)):
        for j, c in enumerate(cands):
            want = 0.0
            for h, valid in tilt.grams(state[i : i + 1], np.array([[c]], dtype=np.int64)):
                if np.broadcast_to(valid, (1, 1))[0, 0]:
                    b = int(mix(np.broadcast_to(h, (1, 1)).copy())[0, 0] & masks[slot[i]])
                    want += float(table[slot[i], b])
            assert got[i, j] == pytest.approx(want, abs=1e-5), (prefixes[i], chr(max(c, 0)))
    assert (got[:, -1] == 0).all()  # a candidate of no byte completes nothing


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> LoadedModel:
    return load_model(tiny_model)


def _taste(seed: int, strength: float = 40.0, length_factor: float = 1.0) -> tilt.TasteTilt:
    w = np.random.default_rng(seed).normal(0, 1.0, 1 << 12).astype(np.float32)
    t = tilt.tilt_of(w, strength, length_factor, name=f"taste {seed}")
    assert t is not None
    return t


def _req(seed: int, t: tilt.TasteTilt | None = None, **kw: object) -> CaptionRequest:
    base = CaptionRequest("two-buttons", 2, decoding=Decoding("natural"), seed=seed, tilt=t)
    return replace(base, **kw)  # type: ignore[arg-type]


def _boxes(model: LoadedModel, reqs: list[CaptionRequest]) -> list[list[list[str]]]:
    jobs = [make_job(model, r) for r in reqs]
    run_jobs(model, jobs)
    return [[c.boxes for c in j.captions()] for j in jobs]


@pytest.mark.slow
def test_the_tilt_changes_only_its_own_requests_captions(model: LoadedModel) -> None:
    a = _taste(1)
    plain = [_req(s) for s in range(12)]
    tilted = [_req(s, a) for s in range(12)]
    # in one batch, the plain rows write exactly what they write with no taste in the batch
    mixed = _boxes(model, [r for pair in zip(plain, tilted, strict=True) for r in pair])
    alone_plain = _boxes(model, plain)
    assert mixed[0::2] == alone_plain
    # and the tilt does change its own rows' captions
    assert mixed[1::2] != alone_plain
    assert sum(m != p for m, p in zip(mixed[1::2], alone_plain, strict=True)) >= 6
    # another server's taste changes captions otherwise
    assert _boxes(model, [_req(s, _taste(2)) for s in range(12)]) != mixed[1::2]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["natural", "calibrated", "top-p", "threshold"])
def test_same_seed_same_caption_batched_or_alone(model: LoadedModel, method: str) -> None:
    a, b = _taste(1), _taste(2)
    d = Decoding(method, top_p=0.9)
    reqs = [
        _req(5, a, decoding=d),
        _req(6, b, decoding=d, n=2, n_candidates=2),
        _req(7, None, decoding=d),
        _req(8, a, decoding=d, start="when the|"),
        _req(9, b, decoding=Decoding("greedy")),
    ]
    alone = captions_alone(model, reqs)
    assert _boxes(model, reqs) == alone  # batched == unbatched
    assert _boxes(model, reqs) == alone  # and again: deterministic per seed
    assert _boxes(model, list(reversed(reqs))) == list(reversed(alone))


@pytest.mark.slow
def test_the_length_factor_shortens_drawn_lengths(model: LoadedModel) -> None:
    short = _taste(1, strength=0.0, length_factor=0.5)
    n = 40
    plain = _boxes(model, [_req(s) for s in range(n)])
    shorter = _boxes(model, [_req(s, short) for s in range(n)])

    def mean_len(out: list[list[list[str]]]) -> float:
        return float(np.mean([sum(len(b) for b in c[0]) for c in out]))

    assert mean_len(shorter) < 0.8 * mean_len(plain)


def test_no_tilt_when_it_would_change_nothing() -> None:
    assert tilt.tilt_of(np.ones(8, np.float32), 0.0) is None
    t = tilt.tilt_of(np.ones(8, np.float32), 0.0, 0.7)
    assert t is not None and t.strength == 0.0 and t.length_factor == 0.7


# Six ids for the pickers' tilt rules: letters a, b, c; a mark `?`; a space; the box end.
A, B, C, MARK, SPACE, END = range(6)
LETTERS = np.array([True, True, True, False, False, False])
# c and `?` are both 6% of the top: above the tilt's floor (2%), below its in-word floor (10%).
PICK_P = np.log(np.array([0.5, 0.2, 0.03, 0.03, 0.2, 0.04]))


def _tilted_picks(
    favourite: int,
    *,
    word_start: bool,
    codes: int,
    after_letter: bool | None,
    strength: float = 5.0,
    n: int = 2000,
) -> np.ndarray:
    from engine.decoding.pickers import pick_rows

    logp = np.repeat(PICK_P[None], n, axis=0)
    u = np.random.default_rng(11).random((n, 2))
    tl = np.zeros((n, 6))
    tl[:, favourite] = strength
    return pick_rows(
        logp,
        Decoding("natural"),
        u,
        np.full(n, codes, dtype=np.int8),
        END,
        SPACE,
        np.full(n, word_start),
        tl,
        LETTERS,
        None if after_letter is None else np.full(n, after_letter),
    )


def test_inside_a_word_a_taste_cannot_spell_an_unlikely_letter() -> None:
    from engine.decoding.pickers import FREE

    # A word may start with the taste's unlikely letter ...
    start = _tilted_picks(C, word_start=True, codes=FREE, after_letter=False)
    assert (start == C).mean() > 0.5
    # ... but not go on with it: inside a word it needs 10% of the top, as made-up words do not.
    inside = _tilted_picks(C, word_start=False, codes=FREE, after_letter=True)
    assert C not in inside and len(set(inside.tolist())) > 1
    # A mark as unlikely is not a letter: a taste may still end a word with it.
    assert (
        _tilted_picks(MARK, word_start=False, codes=FREE, after_letter=True) == MARK
    ).mean() > 0.5


def test_a_box_past_its_length_may_end_its_word_with_the_tastes_mark() -> None:
    from engine.decoding.pickers import PREFER_END

    # a tilt that leaves the space in the nucleus: the box would close at this word end
    closing = _tilted_picks(
        MARK, word_start=False, codes=PREFER_END, after_letter=False, strength=2
    )
    assert MARK not in closing and (closing == END).mean() > 0.5  # closes as before
    marked = _tilted_picks(MARK, word_start=False, codes=PREFER_END, after_letter=True, strength=2)
    changed = marked != closing
    assert changed.any()
    # only rows that would have closed, and only to write the mark (the box closes after it)
    assert (closing[changed] == END).all() and (marked[changed] == MARK).all()
    # without the rows' last characters, as before
    same = _tilted_picks(MARK, word_start=False, codes=PREFER_END, after_letter=None, strength=2)
    assert (same == closing).all()


def test_weighing_candidate_pairs_is_the_full_weigh_at_those_cells() -> None:
    """The row table weighs only (caption, candidate) pairs, each a row of weigh with V = 1
    and its caption's row of `seen`: the same sums as weighing every candidate of every row."""
    rng = np.random.default_rng(3)
    table = rng.normal(size=(2, 1 << 12)).astype(np.float32)
    masks = np.array([4095, 4095], dtype=np.uint64)
    prefixes = ["when you", "", "me |", "i'm  done. ", "what", "a b c d e"]
    state = tilt_states(prefixes)
    slot = np.arange(len(prefixes)) % 2
    seen = rng.random((len(prefixes), 1 << 12)) < 0.3
    cands = np.array([ord(ch) for ch in " ?|a'.-z9"] + [-1], dtype=np.int64)
    full = tilt.weigh(state, cands[None, :], table, slot, masks[slot], seen)
    rows, cols = np.nonzero(rng.random(full.shape) < 0.5)
    pairs = tilt.weigh(
        state[rows], cands[cols][:, None], table, slot[rows], masks[slot[rows]], seen, rows
    )
    np.testing.assert_allclose(pairs[:, 0], full[rows, cols], atol=1e-5)
    assert np.abs(full).max() > 0  # the taste reaches these candidates at all


@pytest.mark.parametrize("method", ["natural", "calibrated", "threshold", "threshold-weighted"])
def test_a_tilt_reaches_only_the_characters_within_its_floor(method: str) -> None:
    """pick_rows under `method` picks the same with the tilt zeroed below tilt_floor (what the
    row table weighs) as with it everywhere: the floor holds every character a tilt can move."""
    from engine.decoding.pickers import FORBID_END, FREE, PREFER_END, pick_rows, tilt_floor

    rng = np.random.default_rng(5)
    n, v = 3000, 12
    logp = rng.normal(0, 2.5, (n, v))
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    u = rng.random((n, 2))
    codes = rng.choice(np.array([FREE, FORBID_END, PREFER_END], dtype=np.int8), n)
    letters = np.arange(v) < 8
    word_start = rng.random(n) < 0.3
    after = rng.random(n) < 0.6
    tl = rng.normal(0, 2.0, (n, v))
    d = Decoding(method)
    lp = logp.copy()
    lp[codes == FORBID_END, v - 1] = -np.inf
    near = lp >= lp.max(axis=1, keepdims=True) + tilt_floor(d)
    assert (~near).any()  # some characters are out of the tilt's reach
    args = (u, codes, v - 1, v - 2, word_start)
    full = pick_rows(logp, d, *args, tl, letters, after)
    reach = pick_rows(logp, d, *args, np.where(near, tl, 0.0), letters, after)
    assert (full == reach).mean() > 0.999  # (a draw on a CDF boundary may round otherwise)
    assert (full != pick_rows(logp, d, *args)).any()  # the tilt moves picks at all
