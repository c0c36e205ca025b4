"""Loading a model for decoding (engine/decoding/loader.py): the crowd's taste shipped beside
the model joins its best-of-N scorer, at the weight asked for, and a crowd file that belongs to
another model refuses the whole load (so a reload keeps what serves)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.decoding.batch import sample_captions
from engine.decoding.loader import load_model
from engine.decoding.pickers import Decoding
from memebot.crowd import CROWD_FILE, CrowdScorer, load_crowd
from memebot.errors import ArtifactError
from memebot.ngrams import N_BUCKETS

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "default"


@pytest.fixture()
def shipped_copy(tmp_path: Path) -> Path:
    art = tmp_path / "model"
    shutil.copytree(SHIPPED, art)
    return art


def test_the_shipped_crowd_joins_the_scorer_at_its_weight() -> None:
    model = load_model(SHIPPED, decoder="numpy", crowd_weight=0.5)
    assert model.scorer.names == ["well_formed", "crowd"]
    texts = ["one does not simply|walk into mordor", "me|my homework"]
    got = model.scorer.score(texts, "one-does-not-simply", [-9.0, -14.0], [10, 10])
    crowd = load_crowd(SHIPPED / CROWD_FILE, model.version).score(texts, "one-does-not-simply")
    want = np.array([-0.9, -1.4], np.float32) + 0.5 * crowd
    np.testing.assert_allclose(got.total, want, rtol=1e-5)


def test_weight_zero_leaves_the_crowd_out() -> None:
    assert load_model(SHIPPED, decoder="numpy", crowd_weight=0).scorer.names == ["well_formed"]


def test_a_model_without_a_crowd_file_scores_well_formedness_alone(shipped_copy: Path) -> None:
    (shipped_copy / CROWD_FILE).unlink()
    model = load_model(shipped_copy, decoder="numpy")
    assert model.scorer.names == ["well_formed"]
    (caption,) = sample_captions(
        model, ["drake"], n_boxes=[2], max_len=60, decoding=Decoding("calibrated"), seed=3
    )
    assert len(caption.boxes) == 2


def test_a_crowd_file_of_another_model_refuses_the_load(shipped_copy: Path) -> None:
    w = np.zeros(N_BUCKETS, np.float32)
    CrowdScorer(w, 0.0, "char-gru-someone-else").save(shipped_copy / CROWD_FILE)
    with pytest.raises(ArtifactError, match="crowd"):
        load_model(shipped_copy, decoder="numpy")
