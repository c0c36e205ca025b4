"""bench/unseen_lengths.py: the drawn mean of a set of quantiles, the predictors and the
leave-one-template-out figures, on small templates made here (answers known by hand)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from bench.unseen_lengths import (
    PREDICTORS,
    Box,
    Known,
    drawn_total,
    evaluate,
    knn,
    known_templates,
    pooled,
    quantile_mean,
    same_count,
)
from memebot.artifact.templates import LENGTH_LEVELS

TOP_BOTTOM = ((0.0, 0.0, 1.0, 0.2, True), (0.0, 0.8, 1.0, 0.2, True))
SIDE_BY_SIDE = ((0.0, 0.0, 0.5, 0.5, False), (0.5, 0.0, 0.5, 0.5, False))


def flat(v: float) -> tuple[float, ...]:
    return tuple(float(v) for _ in LENGTH_LEVELS)


def known(slug: str, box_len: float, boxes: tuple[Box, ...] = TOP_BOTTOM) -> Known:
    n = len(boxes)
    return Known(slug, slug, n, (flat(box_len),) * n, n * (box_len + 1), boxes, math.nan)


def test_quantile_mean_is_the_mean_of_the_draw() -> None:
    assert quantile_mean(flat(7)) == pytest.approx(7)
    assert quantile_mean(tuple(10 * x for x in LENGTH_LEVELS)) == pytest.approx(5)  # uniform 0..10
    assert drawn_total([flat(20), flat(10)]) == pytest.approx(32)  # two markers


def test_nearest_layouts_lend_their_lengths() -> None:
    """Two side-by-side templates write 10 a box, three top-bottom ones 30: a side-by-side
    template borrows 10 from its two nearest, where the same-count mean says 22."""
    pool = [known(f"tb{i}", 30) for i in range(3)] + [
        known("sbs1", 10, SIDE_BY_SIDE),
        known("sbs2", 10, SIDE_BY_SIDE),
    ]
    target = known("new", 10, SIDE_BY_SIDE)
    assert knn(2)(target, pool) == (flat(10), flat(10))
    assert same_count(target, pool)[0] == pytest.approx(flat(22))
    # ties at the k-th distance all count: k=1 still averages both side-by-side ones
    assert knn(1)(target, pool) == knn(2)(target, pool)


def test_leave_one_out_figures() -> None:
    pool = [known(f"tb{i}", 30 + i / 2) for i in range(4)] + [
        known(f"sbs{i}", 20 + i / 2, SIDE_BY_SIDE) for i in range(3)
    ]
    predictors = {"same-count": same_count, "knn-2": knn(2), "own": PREDICTORS["own"]}
    r = evaluate(pool, predictors)
    assert r["own"]["within_10pct"] == 1.0 and r["own"]["median_abs_log_ratio"] == 0.0
    assert r["knn-2"]["within_10pct"] == 1.0  # each kind from its own kind
    assert r["same-count"]["within_10pct"] == 0.0  # the two kinds mixed: all off by 10%+
    assert set(r["knn-2"]["ratios"]) == {k.slug for k in pool}


def test_pooled_is_training_fallback_over_the_other_templates_captions() -> None:
    """Training's fallback weighs captions: 30 captions of one template, 10 of another."""
    a = replace(known("a", 10), rows={2: [[10, 20]] * 30, 1: [[99]] * 30})
    b = replace(known("b", 30), rows={2: [[30, 40]] * 10})
    first, second = pooled(known("new", 0), [a, b])
    assert quantile_mean(first) == pytest.approx(15, abs=1)  # 3/4 at 10, 1/4 at 30
    assert quantile_mean(second) == pytest.approx(25, abs=1)
    assert max(first) == 30  # the one-box captions are not in it


@pytest.mark.realdata
@pytest.mark.slow
def test_the_engine_lengths_beat_the_fallback_on_the_real_data(real_data_dir: Path) -> None:
    """The figures docs/ENGINE.md gives: borrowing by layout (memebot/lengths.py) puts more
    templates within ±10% than training's fallback, leave-one-template-out."""
    from engine.catalog import Catalog
    from memebot.settings import Settings
    from training.prepare import prepare

    prep = prepare(real_data_dir, cache_dir=Settings.from_env().cache_dir)
    known_ = known_templates(prep, Catalog.load(), None)
    assert len(known_) == 86
    r = evaluate(known_, {k: PREDICTORS[k] for k in ("pooled (today)", "ridge-geometry")})
    before, now = r["pooled (today)"], r["ridge-geometry"]
    assert round(before["within_10pct"], 2) == 0.42 and round(now["within_10pct"], 2) == 0.56
    assert now["median_abs_log_ratio"] < before["median_abs_log_ratio"] - 0.02
