from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.sampling import Decoding, pick

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
def test_captions_honour_box_count_start_and_seed(tiny_model: Path) -> None:
    from training.runtime import load_model
    from training.sampling import sample_captions

    m = load_model(tiny_model)
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
def test_batched_equals_unbatched(tiny_model: Path) -> None:
    from training.runtime import load_model
    from training.sampling import CaptionJob, CaptionRequest, run_jobs

    m = load_model(tiny_model)
    reqs = [
        CaptionRequest("two-buttons", 2, seed=1),
        CaptionRequest(
            "success-kid", 1, start="when", seed=2, decoding=Decoding("top-p", top_p=0.9)
        ),
        CaptionRequest("distracted-boyfriend", 3, seed=3, n=3),
        CaptionRequest("y-u-no", 2, decoding=Decoding("beam", beam_width=4, min_score=0.05), n=2),
    ]
    alone = []
    for r in reqs:
        job = CaptionJob(m, r)
        run_jobs(m, [job])
        alone.append([s.boxes for s in job.captions()])
    jobs = [CaptionJob(m, r) for r in reqs]
    run_jobs(m, jobs)
    assert [[s.boxes for s in j.captions()] for j in jobs] == alone
    assert len(alone[2]) == 3 and len(alone[3]) == 2


@pytest.mark.slow
def test_beam_returns_best_of_collected_captions(tiny_model: Path) -> None:
    from training.runtime import load_model
    from training.sampling import CaptionJob, CaptionRequest, run_jobs

    m = load_model(tiny_model)
    job = CaptionJob(
        m,
        CaptionRequest(
            "two-buttons", 2, decoding=Decoding("beam", beam_width=5, min_score=0.01), n=5
        ),
    )
    run_jobs(m, [job])
    caps = job.captions()
    assert len(caps) == 5 and all(len(c.boxes) == 2 and all(c.boxes) for c in caps)
    assert [c.logprob for c in caps] == sorted((c.logprob for c in caps), reverse=True)


def test_threshold_weighted_keeps_candidates_and_follows_probabilities() -> None:
    got = draws(Decoding("threshold-weighted", min_score=0.3), 6000)
    p = np.exp(TOY)
    assert (p[got] >= 0.3 * p.max() - 1e-12).all()
    share = np.bincount(got, minlength=6) / len(got)
    assert share[0] > share[1] > share[2] > 0  # unlike threshold, not uniform among candidates
