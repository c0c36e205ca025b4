"""Teacher-forced caption log-likelihood (engine/decoding/teacher.py): the same number the
decoder tracks while it writes a caption, whatever the batch's mix of lengths and templates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.decoding.batch import sample_captions
from engine.decoding.loader import load_model
from engine.decoding.pickers import Decoding
from engine.decoding.teacher import caption_logprobs

pytestmark = pytest.mark.slow
TEMPLATES = ["success-kid", "two-buttons", "y-u-no", "distracted-boyfriend", "no-such-template"]


@pytest.mark.parametrize("decoding", [Decoding("greedy"), Decoding()])
def test_equals_what_decoding_tracked(tiny_model: Path, decoding: Decoding) -> None:
    model = load_model(tiny_model, decoder="numpy")
    caps = sample_captions(model, TEMPLATES, seed=5, decoding=decoding)
    got = caption_logprobs(model, TEMPLATES, [c.text for c in caps], batch=2)  # mixed batches
    # float32 steps over other batch shapes: equal to rounding
    assert got == pytest.approx([c.logprob for c in caps], rel=1e-6, abs=1e-4)


def test_a_likely_caption_beats_a_scrambled_one(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    (cap,) = sample_captions(model, ["two-buttons"], seed=0, decoding=Decoding("greedy"))
    scrambled = "".join(np.random.default_rng(0).permutation(list(cap.boxes[0]))) + "|zq|"
    good, bad = caption_logprobs(model, ["two-buttons"] * 2, [cap.text, scrambled])
    assert good / len(cap.text) > bad / len(scrambled)
    assert caption_logprobs(model, [], []).shape == (0,)
    with pytest.raises(ValueError):
        caption_logprobs(model, ["a"], [])
