"""Fitting a server's taste (retrain/taste_fit.py): the fit finds a server's topic in a few
dozen memes, quickly; the AUC matches the pair count; the gate accepts a better scorer and
rejects a worse or equal one, against the current taste, the crowd's or chance; the length
factor follows a length taste, measured against the lengths the engine draws."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from engine.catalog import Catalog
from engine.lengths import borrow_for_catalog
from memebot.artifact.templates import LENGTH_LEVELS, TemplateTable
from memebot.catalog_file import read_layouts
from memebot.ngrams import hash_features
from memebot.taste_file import TASTE_BUCKETS, TasteScorer
from retrain.taste_curation import TasteCurated, TasteRow
from retrain.taste_fit import (
    L2_FLOOR,
    L2_ROWS,
    auc,
    fit_length_factor,
    fit_logistic,
    fit_taste,
    gate_taste,
    heldout_auc,
    typical_lengths,
)

BASE = "char-gru-test"
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "default"
WORDS = [
    "when",
    "you",
    "finally",
    "get",
    "the",
    "monday",
    "coffee",
    "boss",
    "homework",
    "meeting",
    "weekend",
    "code",
    "bug",
]


def _rows(n: int, seed: int, split: str, topic: str = "cat") -> list[TasteRow]:
    """Captions of random words; the server likes the ones about its topic."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        words = list(rng.choice(WORDS, size=5))
        liked = bool(rng.random() < 0.4)
        if liked:
            words[int(rng.integers(5))] = topic
        out.append(
            TasteRow(
                generation_id=seed * 10_000 + i,
                template=f"t{i % 3}",
                boxes=(" ".join(words[:2]), " ".join(words[2:])),
                label=1 if liked else -1,
                weight=1 + int(rng.integers(2)),
                up=1 if liked else 0,
                down=0 if liked else 1,
                split=split,
            )
        )
    return out


def _curated(n_train: int = 60, n_held: int = 30) -> TasteCurated:
    return TasteCurated(
        guild_id=7, train=_rows(n_train, 1, "train"), heldout=_rows(n_held, 2, "heldout")
    )


def test_auc_counts_pairs_with_ties_half() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 40).astype(float)  # many ties
    y = rng.choice([1, -1], 40)
    pairs = [(a, b) for a, b in itertools.product(s[y > 0], s[y < 0])]
    want = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert auc(s, y) == pytest.approx(want)
    assert np.isnan(auc(s, np.ones(40)))


def test_fit_finds_the_servers_topic() -> None:
    cur = _curated()
    taste = fit_taste(cur, base_version=BASE)
    assert isinstance(taste, TasteScorer) and taste.guild_id == 7 and taste.base_version == BASE
    assert taste.n_votes == cur.n_votes and taste.weights.shape == (TASTE_BUCKETS,)
    assert heldout_auc(taste, cur.heldout) > 0.9
    s = taste.score(["me|my cat|", "me|my homework|"])
    assert s[0] > s[1]
    # Deterministic: a refit gives the same weights.
    again = fit_taste(cur, base_version=BASE)
    assert np.array_equal(again.weights, taste.weights) and again.bias == taste.bias


def test_more_votes_of_the_same_taste_are_trusted_more() -> None:
    # The penalty is on the summed loss (L2_ROWS / rows on the mean): the same memes rated
    # twice over leave the mean loss as it was but halve the penalty, so the taste's n-grams
    # weigh more; a fixed penalty on the mean would give the same weights twice.
    cur = _curated()
    twice = TasteCurated(guild_id=7, train=[*cur.train, *cur.train], heldout=cur.heldout)
    once, more = fit_taste(cur, base_version=BASE), fit_taste(twice, base_version=BASE)
    assert once.metrics["l2"] == pytest.approx(L2_ROWS / len(cur.train))
    assert more.metrics["l2"] == pytest.approx(once.metrics["l2"] / 2)
    norm_once = float(np.linalg.norm(once.weights.astype(np.float64)))
    norm_more = float(np.linalg.norm(more.weights.astype(np.float64)))
    assert norm_more > 1.1 * norm_once
    # The ranking stays the server's: more trust, not another taste.
    assert heldout_auc(more, cur.heldout) > 0.9
    # An explicit penalty is used as given, whatever the rows.
    fixed = fit_taste(twice, base_version=BASE, l2=once.metrics["l2"])
    assert fixed.metrics["l2"] == once.metrics["l2"]
    assert np.allclose(fixed.weights, once.weights, atol=1e-3)


def test_the_penalty_stops_shrinking_at_its_floor() -> None:
    # Beyond L2_ROWS / L2_FLOOR rows the penalty is the floor: a big server's taste does not
    # chase the rare n-grams of its captions into made-up words.
    rows = _rows(int(2 * L2_ROWS / L2_FLOOR), 5, "train")
    taste = fit_taste(
        TasteCurated(guild_id=7, train=rows, heldout=_curated().heldout), base_version=BASE
    )
    assert taste.metrics["l2"] == pytest.approx(L2_FLOOR)


def test_fit_on_thousands_of_rows_ranks_them() -> None:
    # How long it takes is bench/communities.py's `taste_retrain_seconds`, not a test's.
    rows = _rows(3000, 5, "train")
    y = np.array([r.label for r in rows])
    texts = [r.text for r in rows]
    w, b = fit_logistic(texts, y)
    assert auc(hash_features(texts, TASTE_BUCKETS).dot(w) + b, y) > 0.9


def test_gate_accepts_better_and_rejects_worse() -> None:
    cur = _curated()
    good = fit_taste(cur, base_version=BASE)
    good.version = 2
    bad = TasteScorer(-good.weights, -good.bias, 7, BASE, version=1)  # ranks them backwards
    # Against no taste and no crowd scorer: chance.
    g = gate_taste(good, cur.heldout)
    assert g.promoted and g.baseline == "chance" and g.baseline_auc == 0.5
    assert not gate_taste(bad, cur.heldout).promoted
    # Against the current taste, on the same held-out rows.
    g = gate_taste(good, cur.heldout, current=bad)
    assert g.promoted and g.baseline == "taste v1" and g.candidate_auc > g.baseline_auc
    g = gate_taste(bad, cur.heldout, current=good)
    assert not g.promoted and g.baseline == "taste v2"
    assert "kept the current taste" in g.summary()
    # Equal is not better: a refit of the same rows does not replace the taste.
    assert not gate_taste(fit_taste(cur, base_version=BASE), cur.heldout, current=good).promoted
    # Against the default (crowd) scorer when the server has no taste: a current taste wins
    # over the default as the baseline.
    assert gate_taste(bad, cur.heldout, default=good).baseline == "crowd"
    assert not gate_taste(bad, cur.heldout, default=good).promoted
    assert gate_taste(good, cur.heldout, current=bad, default=good).baseline == "taste v1"
    assert gate_taste(good, cur.heldout).to_json()["promoted"] is True


def test_a_taste_below_chance_is_never_promoted() -> None:
    cur = _curated()
    good = fit_taste(cur, base_version=BASE)
    bad = TasteScorer(-good.weights, -good.bias, 7, BASE, version=1)
    worse = TasteScorer(-2 * good.weights, -good.bias, 7, BASE, version=1)
    # A default or a current taste that ranks backwards is no bar to clear with another one.
    g = gate_taste(bad, cur.heldout, default=good.__class__(-good.weights * 3, 0.0, 7, BASE))
    assert g.candidate_auc < 0.5 and not g.promoted
    assert not gate_taste(bad, cur.heldout, current=worse).promoted
    assert gate_taste(good, cur.heldout, current=bad).promoted


def test_gate_with_no_heldout_pair_never_promotes() -> None:
    cur = _curated()
    good = fit_taste(cur, base_version=BASE)
    only_liked = [r for r in cur.heldout if r.label > 0]
    assert not gate_taste(good, only_liked).promoted


def _length_rows(n: int, seed: int, split: str, likes_short: bool) -> list[TasteRow]:
    """Captions of 10 to 60 characters; the server likes the short ones (or any, at random)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        chars = int(rng.integers(10, 61))
        liked = chars <= 25 if likes_short else bool(rng.random() < 0.3)
        if rng.random() < 0.1:
            liked = not liked  # vote noise
        out.append(
            TasteRow(
                generation_id=seed * 10_000 + i,
                template="t",
                boxes=("x" * (chars // 2), "y" * (chars - chars // 2)),
                label=1 if liked else -1,
                weight=1,
                up=int(liked),
                down=int(not liked),
                split=split,
            )
        )
    return out


def test_the_length_factor_follows_a_length_taste_and_only_one() -> None:
    typical = {"t": 40.0}.get

    def factor(likes_short: bool, seed: int) -> tuple[float, dict[str, float]]:
        curated = TasteCurated(
            guild_id=7,
            train=_length_rows(200, seed, "train", likes_short),
            heldout=_length_rows(80, seed + 1, "heldout", likes_short),
        )
        return fit_length_factor(curated, lambda t, n: typical(t))

    short, metrics = factor(True, 1)
    assert 0.4 <= short < 0.7 and metrics["length_heldout_auc"] > 0.75
    for seed in range(3):  # length does not matter to it: its lengths stay about people's
        assert factor(False, 10 * seed)[0] == pytest.approx(1.0, abs=0.1)
    curated = _curated()
    assert fit_length_factor(curated, None) == (1.0, {})
    fitted = fit_taste(curated, base_version=BASE, typical=lambda t, n: 30.0)
    assert fitted.metrics["length_factor"] == fitted.length_factor


def _medians(table: TemplateTable, slug: str, n: int) -> float:
    qs = table.length_quantiles(slug, n)
    assert qs is not None
    return sum(q[LENGTH_LEVELS.index(0.5)] for q in qs)


def test_a_captionless_template_is_measured_against_the_lengths_the_engine_draws() -> None:
    """Distracted Boyfriend has no captions in the shipped model: the engine draws its boxes'
    lengths borrowed by layout (the girlfriend's label short), not training's 3-box stand-in,
    and a server's lengths there are measured against those."""
    table = TemplateTable.load(SHIPPED / "templates.json")
    catalog = Catalog.load()
    served = borrow_for_catalog(table, catalog)  # as load_engine_model serves the table
    typical = typical_lengths(table, read_layouts())
    slug = "distracted-boyfriend"
    drawn, stand_in = _medians(served, slug, 3), _medians(table, slug, 3)
    assert abs(drawn - stand_in) > 2  # borrowing moves it, else the fit below says nothing
    for t in catalog.templates:
        assert typical(t.slug, t.box_count) == pytest.approx(_medians(served, t.slug, t.box_count))
    # The server likes 30-character captions there (and dislikes 60): the raw factor is 30
    # over what the engine draws.
    rows = [
        TasteRow(
            i, slug, ("a" * 10, "b" * (n - 20), "c" * 10), lab, 1, int(lab > 0), int(lab < 0), split
        )
        for split in ("train", "heldout")
        for i, (n, lab) in enumerate([(30, 1), (60, -1)] * 10)
    ]
    curated = TasteCurated(
        guild_id=7,
        train=[r for r in rows if r.split == "train"],
        heldout=[r for r in rows if r.split == "heldout"],
    )
    fitted = fit_taste(curated, base_version=BASE, typical=typical)
    assert fitted.metrics["length_raw"] == pytest.approx(30 / drawn)
    assert fitted.length_factor == pytest.approx(max(30 / drawn, 0.4))  # length ranks all
