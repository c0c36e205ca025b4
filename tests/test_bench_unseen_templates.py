"""bench/unseen_templates.py: name shares, the estimate, and a run on a model that never saw a
template (the tiny fixture without y-u-no)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.unseen_templates import estimate, measure, name_shares, table
from harness.factories import train_tiny
from training.prepare import prepare


def test_name_shares_first_and_last_box() -> None:
    caps = [("y u no work", "please"), ("why", "y u no sleep"), ("fine", "ok")]
    first, last = name_shares(caps, "y u no", 2)
    assert (first, last) == (1 / 3, 1 / 3)
    assert name_shares([("y u no",)], "y u no", 1) == (1.0, 0.0)
    assert all(math.isnan(x) for x in name_shares([], "y u no", 2))


def test_estimate_leaves_the_withheld_out(tiny_data: Path) -> None:
    """The fixture's phrase-named template is Y U No (Success Kid, Two Buttons are not
    phrases): estimated from it, or from nothing once it is withheld."""
    prep = prepare(tiny_data)
    est = estimate(prep)
    assert est["templates"] == ["y-u-no"]
    assert 0 <= est["name_opens_first"] <= 1
    none = estimate(prep, ["y-u-no"])
    assert none["templates"] == [] and math.isnan(none["name_opens_first"])


@pytest.mark.slow
def test_measure_on_a_model_without_one_template(tiny_data: Path, tmp_path: Path) -> None:
    out = train_tiny(tiny_data, tmp_path / "m", epochs=1, exclude_templates=("y-u-no",))
    r = measure(out, prepare(tiny_data), per_template=20)
    assert r["withheld"] == ["y-u-no"]
    assert r["nats_per_char_withheld"] > 0 and r["withheld_captions_scored"] > 0
    for key in ("generic", "name_seed", "seen"):
        assert r[key]["captions"] == 20 * len(r[key]["length_ratios"])
        assert r[key]["distinct2_ratio"] > 0
    assert r["generic"]["name_opens"]["y-u-no"] == (0.0, 0.0)  # the fixture never writes it
    assert "y-u-no" in r["name_seed"]["name_opens"]
    assert r["seen"]["templates"] == ["two-buttons"]  # the largest seen one of 2 boxes
    assert "withheld, generic slot + name seed" in table(r)


@pytest.mark.realdata
@pytest.mark.slow
def test_the_shipped_shares_are_the_estimate_on_the_real_data(real_data_dir: Path) -> None:
    from engine.decoding.unseen import NAME_OPENS_FIRST, NAME_OPENS_LAST
    from memebot.settings import Settings

    prep = prepare(real_data_dir, cache_dir=Settings.from_env().cache_dir)
    est = estimate(prep, ["y-u-no", "that-would-be-great"])
    assert round(est["name_opens_first"], 3) == NAME_OPENS_FIRST
    assert round(est["name_opens_last"], 3) == NAME_OPENS_LAST
