"""Scoring and best-of-N (engine/decoding/scoring.py, jobs.py): the Scorer's arithmetic, the
choice following the score, determinism per seed, and beam search sampling its final beams."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from engine.decoding.batch import run_jobs, sample_captions
from engine.decoding.jobs import CaptionRequest, RowJob, Sampled, make_job
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from engine.decoding.scoring import WELL_FORMED, Scorer, ScoreTerm
from harness.factories import captions_alone

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "default"


class Recorder:
    """A ScoreTerm that scores with `fn` and keeps every batch of texts it was asked about."""

    def __init__(self, name: str, fn: object) -> None:
        self.name = name
        self.fn = fn
        self.seen: list[tuple[list[str], str]] = []

    def score(self, texts: Sequence[str], template: str) -> np.ndarray:
        self.seen.append((list(texts), template))
        return np.array([self.fn(t) for t in texts], dtype=np.float32)  # type: ignore[operator]


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    # Well-formedness alone: these tests check the pick against its own formula; the shipped
    # crowd term joins at MEMEBOT_CROWD_WEIGHT (tests/test_engine_decoding_loader.py).
    return load_model(SHIPPED, threads=1, crowd_weight=0)


def with_scorer(model: LoadedModel, scorer: Scorer) -> LoadedModel:
    return dataclasses.replace(model, scorer=scorer)


def decode(model: LoadedModel, req: CaptionRequest) -> list[Sampled]:
    job = make_job(model, req)
    run_jobs(model, [job])
    return job.captions()


# -- the Scorer by itself ----------------------------------------------------------------------


def test_well_formed_is_mean_logprob_per_character_and_terms_add_by_weight() -> None:
    length = Recorder("length", len)
    s = Scorer().with_term(length, 0.5).score(["ab|", "abcd|"], "drake", [-3.0, -2.0], [3, 5])
    assert np.allclose(s.parts[WELL_FORMED], [-1.0, -0.4])
    assert np.allclose(s.parts["length"], [3, 5])
    assert np.allclose(s.total, [-1.0 + 1.5, -0.4 + 2.5])
    assert s.total.dtype == np.float32
    assert s.parts_of(1) == pytest.approx({WELL_FORMED: -0.4, "length": 5.0})
    assert length.seen == [(["ab|", "abcd|"], "drake")]
    assert isinstance(length, ScoreTerm)
    # no characters generated (the start text closed every box): 0, not a division by zero
    assert Scorer().score(["a|"], "", [0.0], [0]).total[0] == 0.0


def test_a_nan_ranks_last_and_a_bad_term_is_refused() -> None:
    nan = Recorder("nan", lambda t: np.nan if t == "a|" else 0.0)
    s = Scorer().with_term(nan).score(["a|", "b|"], "", [-1.0, -5.0], [2, 2])
    assert s.total[0] == -np.inf and np.isfinite(s.total[1])
    wrong = Recorder("wrong", len)
    wrong.score = lambda texts, template: np.zeros(3, dtype=np.float32)  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="wrong"):
        Scorer().with_term(wrong).score(["a|"], "", [-1.0], [2])
    with pytest.raises(ValueError, match="distinct"):
        Scorer().with_term(Recorder(WELL_FORMED, len))
    with pytest.raises(ValueError, match="2 texts"):
        Scorer().score(["a|", "b|"], "", [-1.0], [2])


# -- best-of-N -----------------------------------------------------------------------------


def test_best_of_n_keeps_the_highest_scored_candidate(model: LoadedModel) -> None:
    """The term sees all n * n_candidates candidates in one call; each caption is the best of
    its group, and another score picks another candidate from the same candidates."""
    req = CaptionRequest("success-kid", 2, seed=11, n=2, n_candidates=6)
    longest = Recorder("length", len)
    got = decode(with_scorer(model, Scorer(((longest, 100.0),))), req)
    ((texts, template),) = longest.seen
    assert template == "success-kid" and len(texts) == 12
    groups = [texts[:6], texts[6:]]
    assert len(set(texts)) > 2, "the candidates are not independent draws"
    assert sorted(c.text for c in got) == sorted(max(g, key=len) for g in groups)
    assert got[0].score is not None and got[1].score is not None and got[0].score >= got[1].score
    assert set(got[0].score_parts) == {WELL_FORMED, "length"}

    shortest = Recorder("short", lambda t: -len(t))
    other = decode(with_scorer(model, Scorer(((shortest, 100.0),))), req)
    assert shortest.seen[0][0] == texts  # the same candidates, whatever the score
    assert sorted(c.text for c in other) == sorted(min(g, key=len) for g in groups)
    assert {c.text for c in other} != {c.text for c in got}

    # the default score: the candidate the generator finds most likely per character
    plain = decode(model, req)
    assert plain[0].score == pytest.approx(plain[0].logprob / plain[0].chars, rel=1e-5)
    assert plain[0].score_parts == {WELL_FORMED: pytest.approx(plain[0].score)}


def test_best_of_n_is_deterministic_per_seed_and_batched_equals_alone(
    model: LoadedModel,
) -> None:
    reqs = [CaptionRequest("success-kid", 2, seed=s, n_candidates=8) for s in range(6)]
    alone = captions_alone(model, reqs)
    assert captions_alone(model, reqs) == alone
    assert len({str(a) for a in alone}) > 1  # other seeds, other captions
    jobs = [make_job(model, r) for r in reqs]
    run_jobs(model, jobs)
    assert [[c.boxes for c in j.captions()] for j in jobs] == alone


def test_one_candidate_is_the_plain_sampled_caption(model: LoadedModel) -> None:
    """n_candidates=1 decodes one row per caption seeded as before: no score can change it,
    and it is the caption the one-call form (training's samples) writes."""
    picky = Scorer(((Recorder("short", lambda t: -len(t)), 100.0),))
    for seed in range(5):
        req = CaptionRequest("distracted-boyfriend", 3, seed=seed)
        job = make_job(model, req)
        assert isinstance(job, RowJob) and job.rows == 1
        (a,) = decode(model, req)
        (b,) = decode(with_scorer(model, picky), req)
        (c,) = sample_captions(model, ["distracted-boyfriend"], n_boxes=[3], seed=seed)
        assert a.boxes == b.boxes == c.boxes
    many = CaptionRequest("distracted-boyfriend", 3, seed=1, n=3)
    assert sorted(c.text for c in decode(model, many)) == sorted(
        c.text for c in decode(with_scorer(model, picky), many)
    )


def test_greedy_decodes_one_row_per_caption(model: LoadedModel) -> None:
    job = make_job(model, CaptionRequest("drake", 2, decoding=Decoding("greedy"), n_candidates=8))
    assert isinstance(job, RowJob) and job.rows == 1


def test_a_start_text_that_closes_every_box_is_scored(model: LoadedModel) -> None:
    (c,) = decode(model, CaptionRequest("drake", 2, start="a|b|", n_candidates=4))
    assert c.boxes == ["a", "b"] and c.score == 0.0


def test_bad_candidate_counts_are_refused(model: LoadedModel) -> None:
    with pytest.raises(ValueError, match="n_candidates"):
        make_job(model, CaptionRequest("drake", 2, n_candidates=0))


# -- beam search ---------------------------------------------------------------------------


def test_beam_samples_its_final_beams_per_seed(model: LoadedModel) -> None:
    def beam(seed: int, scorer: Scorer | None = None, n: int = 1) -> list[Sampled]:
        m = model if scorer is None else with_scorer(model, scorer)
        req = CaptionRequest("success-kid", 2, seed=seed, n=n, decoding=Decoding("beam"))
        return decode(m, req)

    first = [beam(s)[0].text for s in range(12)]
    assert [beam(s)[0].text for s in range(12)] == first  # same seed, same caption
    assert len(set(first)) > 1, "every seed got the same beam"
    # every choice is one of the final beams, and n of them come without repeats
    five = beam(0, n=5)
    assert len({c.text for c in five}) == len(five) == 5
    assert set(first) <= {c.text for c in five}
    # a score that dwarfs the Gumbel noise decides: the beam it ranks first, for every seed
    longest = Scorer(((Recorder("length", len), 1000.0),))
    top = max(len(c.text) for c in five)
    assert {len(beam(s, longest)[0].text) for s in range(5)} == {top}


def test_the_crowd_scorer_is_a_score_term(model: LoadedModel) -> None:
    """memebot/crowd.py's CrowdScorer plugs into a model's scorer as it is."""
    from memebot.crowd import CrowdScorer
    from memebot.ngrams import N_BUCKETS

    rng = np.random.default_rng(0)
    crowd = CrowdScorer(rng.normal(size=N_BUCKETS).astype(np.float32), 0.1, model.version)
    assert isinstance(crowd, ScoreTerm)
    m = with_scorer(model, Scorer().with_term(crowd, 0.5))
    (c,) = decode(m, CaptionRequest("success-kid", 2, seed=3, n_candidates=4))
    assert set(c.score_parts) == {WELL_FORMED, "crowd"}
    want = crowd.score([c.text], "success-kid")[0]
    assert c.score_parts["crowd"] == pytest.approx(float(want), rel=1e-5)
    assert c.score == pytest.approx(c.score_parts[WELL_FORMED] + 0.5 * float(want), rel=1e-5)


def test_a_request_sets_the_weight_of_well_formed_in_its_pick(model: LoadedModel) -> None:
    """well_formed_weight=0 leaves the pick to the other terms (well_formed still reported);
    None keeps the model scorer's weight; the candidates are the same either way."""
    shortest = Recorder("short", lambda t: -len(t))
    scored = with_scorer(model, Scorer(((shortest, 0.01),)))
    reqs = [CaptionRequest("success-kid", 2, seed=s, n_candidates=6) for s in range(8)]
    picks_by_length, picks_default = [], []
    for req in reqs:
        shortest.seen.clear()
        (got,) = decode(scored, dataclasses.replace(req, well_formed_weight=0.0))
        ((texts, _),) = shortest.seen
        assert len(got.text) == min(map(len, texts))
        assert got.score == pytest.approx(-0.01 * len(got.text), rel=1e-5)
        assert got.score_parts[WELL_FORMED] == pytest.approx(got.logprob / got.chars, rel=1e-5)
        picks_by_length.append(got.text)
        shortest.seen.clear()
        (default,) = decode(scored, req)
        assert shortest.seen[0][0] == texts  # the same candidates
        wf = default.score_parts[WELL_FORMED]
        assert default.score == pytest.approx(wf - 0.01 * len(default.text), rel=1e-4)
        (same,) = decode(scored, dataclasses.replace(req, well_formed_weight=1.0))
        assert same.text == default.text
        picks_default.append(default.text)
    assert picks_by_length != picks_default, "the weight changed no pick"
