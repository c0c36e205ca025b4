from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.decoding.pickers import Decoding, pick
from harness.factories import captions_alone
from training.data import Caption

# A fixed toy distribution over 6 ids: top = 0.4
TOY = np.log(np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.04]))


def draws(d: Decoding, n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([pick(TOY, d, rng) for _ in range(n)])


@pytest.mark.parametrize("min_score", [0.1, 0.3, 0.5])
def test_threshold_never_below_min_score_times_top(min_score: float) -> None:
    got = draws(Decoding("threshold", min_score=min_score))
    p = np.exp(TOY)
    assert (p[got] >= min_score * p.max() - 1e-12).all()
    # and it does use every candidate that always qualifies
    assert set(np.flatnonzero(p >= p.max())) <= set(got)


def test_threshold_picks_uniformly_among_candidates() -> None:
    # With min_score=1 only the top qualifies; with min_score=0.6, ids 0 and 1 (0.25 >= 0.24).
    assert set(draws(Decoding("threshold", min_score=1.0), 200)) == {0}
    got = draws(Decoding("threshold", min_score=0.6), 4000)
    assert set(got) == {0, 1}


def test_greedy_is_deterministic() -> None:
    assert set(draws(Decoding("greedy"), 50)) == {0}


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_never_outside_k(k: int) -> None:
    assert set(draws(Decoding("top-k", top_k=k))) <= set(range(k))


def test_top_p_keeps_smallest_set_reaching_p() -> None:
    assert set(draws(Decoding("top-p", top_p=0.6))) == {0, 1}  # 0.4 + 0.25 >= 0.6


def test_top_k_with_top_p() -> None:
    assert set(draws(Decoding("top-k-top-p", top_k=3, top_p=0.99))) <= {0, 1, 2}


def test_temperature_sharpens() -> None:
    cold = draws(Decoding("temperature", temperature=0.3))
    hot = draws(Decoding("temperature", temperature=3.0))
    assert (cold == 0).mean() > (hot == 0).mean() + 0.2


def test_same_seed_same_choice_sequence() -> None:
    d = Decoding("top-p", top_p=0.9)
    assert (draws(d, 100, seed=5) == draws(d, 100, seed=5)).all()


@pytest.mark.slow
def test_captions_honour_box_count_start_and_seed(arch_model: Path) -> None:
    from engine.decoding.batch import sample_captions
    from engine.decoding.loader import load_model

    m = load_model(arch_model)
    for n in (1, 2, 4):
        (s,) = sample_captions(m, ["two-buttons"], n_boxes=[n], seed=1)
        assert len(s.boxes) == n and all(b for b in s.boxes)
        assert s.logprob < 0
    (s,) = sample_captions(m, ["y-u-no"], n_boxes=[3], start="when my dog|ea", seed=2)
    assert s.boxes[0] == "when my dog" and s.boxes[1].startswith("ea") and len(s.boxes) == 3
    a = sample_captions(m, ["success-kid", "distracted-boyfriend"], seed=7)
    b = sample_captions(m, ["success-kid", "distracted-boyfriend"], seed=7)
    assert [x.boxes for x in a] == [x.boxes for x in b]
    for s in sample_captions(m, ["two-buttons"] * 4, n_boxes=[3] * 4, max_len=20, seed=3):
        assert len(s.text) <= 20 and len(s.boxes) == 3


@pytest.mark.slow
def test_batched_equals_unbatched(arch_model: Path) -> None:
    from engine.decoding.batch import run_jobs
    from engine.decoding.jobs import CaptionRequest, make_job
    from engine.decoding.loader import load_model

    m = load_model(arch_model)
    reqs = [
        CaptionRequest("two-buttons", 2, seed=1),
        CaptionRequest(
            "success-kid", 1, start="when", seed=2, decoding=Decoding("top-p", top_p=0.9)
        ),
        CaptionRequest("distracted-boyfriend", 3, seed=3, n=3),
        CaptionRequest(
            "y-u-no", 2, decoding=Decoding("beam", beam_width=4, min_score=0.05), n=2, seed=4
        ),
        CaptionRequest("two-buttons", 2, seed=5, n=2, n_candidates=3),
    ]
    alone = captions_alone(m, reqs)
    jobs = [make_job(m, r) for r in reqs]
    run_jobs(m, jobs)
    assert [[s.boxes for s in j.captions()] for j in jobs] == alone
    assert len(alone[2]) == 3 and len(alone[3]) == 2 and len(alone[4]) == 2


@pytest.mark.slow
def test_beam_returns_best_of_collected_captions(arch_model: Path) -> None:
    from engine.decoding.batch import run_jobs
    from engine.decoding.jobs import CaptionRequest, make_job
    from engine.decoding.loader import load_model

    m = load_model(arch_model)
    job = make_job(
        m,
        CaptionRequest(
            "two-buttons", 2, decoding=Decoding("beam", beam_width=5, min_score=0.01), n=5
        ),
    )
    run_jobs(m, [job])
    caps = job.captions()  # n = beam_width: every final beam, best score first
    assert len(caps) == 5 and all(len(c.boxes) == 2 and all(c.boxes) for c in caps)
    assert {c.text for c in caps} == {c.text for c in job.results}
    scores = [c.score for c in caps]
    assert None not in scores and scores == sorted(scores, reverse=True)  # type: ignore[type-var]


@pytest.mark.slow
def test_every_method_decodes_every_architecture(arch_model: Path) -> None:
    """Each decoding method, in one batch with the others, gives whole captions that do not
    depend on the batch, and the model's own step runs them (no kernel for lstm)."""
    from engine.decoding.batch import run_jobs
    from engine.decoding.jobs import CaptionRequest, make_job
    from engine.decoding.loader import load_model
    from memebot.decoding import METHODS

    m = load_model(arch_model)
    assert m.step_backend in (("kernel", "numpy") if m.arch == "char-gru" else ("numpy",))
    reqs = [
        CaptionRequest(
            "two-buttons",
            2,
            decoding=Decoding(method, temperature=0.8, top_k=5, top_p=0.9, beam_width=3),
            seed=i,
            n=2,
        )
        for i, method in enumerate(METHODS)
    ]
    jobs = [make_job(m, r) for r in reqs]
    run_jobs(m, jobs)
    got = [[s.boxes for s in j.captions()] for j in jobs]
    assert got == captions_alone(m, reqs)
    for method, caps in zip(METHODS, got, strict=True):
        assert len(caps) == 2 and all(len(b) == 2 and all(b) for b in caps), (method, caps)


def test_threshold_weighted_keeps_candidates_and_follows_probabilities() -> None:
    got = draws(Decoding("threshold-weighted", min_score=0.3), 6000)
    p = np.exp(TOY)
    assert (p[got] >= 0.3 * p.max() - 1e-12).all()
    share = np.bincount(got, minlength=6) / len(got)
    assert share[0] > share[1] > share[2] > 0  # unlike threshold, not uniform among candidates


# --- vectorised picking and the calibrated rule -------------------------------------------------

PER_ROW = [
    "threshold",
    "threshold-weighted",
    "calibrated",
    "natural",
    "greedy",
    "temperature",
    "top-k",
]


@pytest.mark.parametrize("method", [*PER_ROW, "top-p", "top-k-top-p"])
def test_pick_rows_matches_row_by_row(method: str) -> None:
    """A row's pick depends only on its own log-probabilities and draws, not on the batch."""
    from engine.decoding.pickers import FREE, pick_rows

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(64, 12)) * 2
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    u = rng.random((64, 2))
    codes = np.full(64, FREE)
    d = Decoding(method, temperature=0.7, top_k=4, top_p=0.8)
    together = pick_rows(logp, d, u, codes, end_id=5)
    alone = [
        int(pick_rows(logp[i : i + 1], d, u[i : i + 1], codes[i : i + 1], 5)[0]) for i in range(64)
    ]
    assert together.tolist() == alone
    assert len(set(together.tolist())) > 1 or method == "greedy"


@pytest.mark.parametrize("method", PER_ROW)
def test_row_codes_are_obeyed(method: str) -> None:
    from engine.decoding.pickers import FORBID_END, FORCE_END, PREFER_END, pick_rows

    end = 0  # the end marker is the most likely id of TOY
    logp = np.repeat(TOY[None], 500, axis=0)
    u = np.random.default_rng(1).random((500, 2))
    d = Decoding(method, min_score=0.5)
    forbid = pick_rows(logp, d, u, np.full(500, FORBID_END), end)
    assert end not in forbid
    assert (pick_rows(logp, d, u, np.full(500, FORCE_END), end) == end).all()
    prefer = pick_rows(logp, d, u, np.full(500, PREFER_END), end)
    if method in ("calibrated", "natural"):  # the marker is always a candidate (the top)
        assert (prefer == end).all()
    elif method != "greedy":  # only the length-targeted methods act on PREFER_END
        assert (prefer != end).any()


def test_calibrated_prefers_end_only_when_it_is_a_candidate() -> None:
    from engine.decoding.pickers import PREFER_END, pick_rows

    end = 5  # p = 0.04: below 0.5 * top, never a threshold candidate
    u = np.random.default_rng(2).random((400, 2))
    got = pick_rows(
        np.repeat(TOY[None], 400, axis=0),
        Decoding("calibrated", min_score=0.5),
        u,
        np.full(400, PREFER_END),
        end,
    )
    assert end not in got


def _caption(template: str, *lengths: int) -> Caption:
    return Caption(template, tuple("x" * n for n in lengths))


def test_template_table_box_length_quantiles() -> None:
    from memebot.artifact.templates import LENGTH_LEVELS
    from training.templates import build_table

    train = [_caption("long-short", 30 + i % 11, 5) for i in range(44)]
    train += [_caption("rare", 50, 50) for _ in range(3)]  # too few: uses all 2-box captions
    train += [_caption("solo", 12 + i % 3) for i in range(25)]
    table = build_table({}, train, train)
    ls = table.get("long-short")
    assert ls is not None and len(ls.box_lengths) == 2
    q0, q1 = ls.box_lengths
    assert len(q0) == len(LENGTH_LEVELS) and q0[0] == 30 and q0[-1] == 40 and q0[5] == 35
    assert set(q1) == {5.0}
    rare = table.get("rare")
    assert rare is not None and rare.box_lengths[0][0] == 30  # pooled with long-short
    assert rare.box_lengths[0][-1] == 50
    # a box count the template does not have reuses its last box; one it lacks entirely
    # averages the templates with that many boxes
    q = table.length_quantiles("solo", 3)
    assert q is not None and q[0] == q[2] == table.get("solo").box_lengths[0]  # type: ignore[union-attr]
    unknown = table.length_quantiles("not-in-table", 2)
    assert unknown is not None and len(unknown) == 2 and unknown[1][0] < unknown[0][0]


def test_template_table_without_length_stats_still_loads() -> None:
    from memebot.artifact.templates import TemplateTable
    from training.templates import build_table

    table = build_table({}, [_caption("a", 3, 4)], [_caption("a", 3, 4)])
    old = [{k: v for k, v in e.items() if k != "box_lengths"} for e in table.to_json()]
    loaded = TemplateTable.from_json(old)
    assert loaded.get("a") is not None and loaded.length_quantiles("a", 2) is None
    assert TemplateTable.from_json(table.to_json()).to_json() == table.to_json()


@pytest.mark.slow
@pytest.mark.parametrize("length", [5, 30])
# The transformer's max_len 200 is cut to its 96 positions. (lstm's tiny model writes ~40
# characters a box undirected, so "longer than free" says nothing about it.)
@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_transformer"])
def test_calibrated_boxes_follow_the_template_lengths(
    fixture: str, length: int, request: pytest.FixtureRequest
) -> None:
    """With every quantile at `length`, each box closes no earlier than length - CLOSE_EARLY
    (the marker is masked before) and, past it, at the first plausible word end."""
    import dataclasses

    from engine.decoding.batch import CLOSE_EARLY, sample_captions
    from engine.decoding.loader import load_model
    from memebot.artifact.templates import LENGTH_LEVELS, TemplateTable

    m = load_model(request.getfixturevalue(fixture))
    q = tuple(float(length) for _ in LENGTH_LEVELS)
    entries = [
        dataclasses.replace(e, box_lengths=(q, q)) if e.slug == "two-buttons" else e
        for e in m.templates.entries
    ]
    m.templates = TemplateTable(entries)
    caps = sample_captions(m, ["two-buttons"] * 40, n_boxes=[2] * 40, max_len=200, seed=11)
    lens = [len(b) for c in caps for b in c.boxes]
    assert min(lens) >= length - CLOSE_EARLY
    free = sample_captions(
        m,
        ["two-buttons"] * 40,
        n_boxes=[2] * 40,
        max_len=200,
        seed=11,
        decoding=Decoding("threshold"),
    )
    free_mean = np.mean([len(b) for c in free for b in c.boxes])
    if length == 30:
        assert np.mean(lens) > free_mean
    else:
        assert np.mean(lens) < length + 12


# --- natural: nucleus at word starts, a narrower one inside words, drawn lengths -------------


def test_natural_keeps_each_positions_nucleus() -> None:
    from engine.decoding.pickers import FREE, pick_rows

    n = 3000
    logp = np.repeat(TOY[None], n, axis=0)
    u = np.random.default_rng(4).random((n, 2))
    codes = np.full(n, FREE)
    d = Decoding("natural", start_top_p=0.6, word_top_p=0.75)
    start = np.arange(n) % 2 == 0  # every other row begins a word
    got = pick_rows(logp, d, u, codes, end_id=5, word_start=start)
    assert set(got[start].tolist()) == {0, 1}  # 0.4 + 0.25 reaches 0.6
    assert set(got[~start].tolist()) == {0, 1, 2}  # + 0.15 reaches 0.75
    # within the nucleus, in proportion to probability
    share = np.bincount(got[~start], minlength=6)[:3] / (~start).sum()
    assert share == pytest.approx([0.5, 0.3125, 0.1875], abs=0.04)
    # the same draws, the same picks; others, others
    assert (pick_rows(logp, d, u, codes, end_id=5, word_start=start) == got).all()
    u2 = np.random.default_rng(5).random((n, 2))
    assert (pick_rows(logp, d, u2, codes, end_id=5, word_start=start) != got).any()


def test_natural_is_deterministic_per_seed(tiny_model: Path) -> None:
    from engine.decoding.batch import sample_captions
    from engine.decoding.loader import load_model

    m = load_model(tiny_model)

    def write(seed: int) -> list[str]:
        caps = sample_captions(
            m, ["two-buttons"] * 8, n_boxes=[2] * 8, seed=seed, decoding=Decoding("natural")
        )
        return [c.text for c in caps]

    first = write(3)
    assert write(3) == first
    assert write(4) != first
    assert all(t.count("|") == 2 for t in first)


@pytest.mark.slow
def test_natural_length_scale_moves_mean_length(tiny_model: Path) -> None:
    """Every quantile at 20 characters a box: the drawn lengths, scaled, set where boxes end."""
    import dataclasses

    from engine.decoding.batch import CLOSE_EARLY, sample_captions
    from engine.decoding.loader import load_model
    from memebot.artifact.templates import LENGTH_LEVELS, TemplateTable

    m = load_model(tiny_model)
    q = tuple(20.0 for _ in LENGTH_LEVELS)
    m.templates = TemplateTable(
        dataclasses.replace(e, box_lengths=(q, q)) if e.slug == "two-buttons" else e
        for e in m.templates.entries
    )

    def box_lengths(scale: float) -> list[int]:
        caps = sample_captions(
            m,
            ["two-buttons"] * 40,
            n_boxes=[2] * 40,
            max_len=200,
            seed=7,
            decoding=Decoding("natural", length_scale=scale),
        )
        return [len(b) for c in caps for b in c.boxes]

    short, long = box_lengths(0.5), box_lengths(1.5)
    assert min(long) >= 30 - CLOSE_EARLY  # the marker is masked before the drawn length
    assert np.mean(long) > np.mean(short) + 8
