"""The transformer's tf step (engine/decoding/transformer_tf.py) against its NumPy KV-cache
step: logits over random churn (rows joining, leaving, reordered, repeated), a row unaffected by
its batch, the same captions through the normal decoding path for a trained artifact, and the
engine's position limit carried through TFStepper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.decoding import tf_device
from engine.decoding.batch import sample_captions
from engine.decoding.loader import load_model
from engine.decoding.pickers import Decoding
from engine.decoding.transformer import TransformerStepper
from harness.skips import skip_or_fail
from harness.transformer import CFG, VOCAB, random_weights

pytestmark = pytest.mark.slow  # imports TensorFlow and compiles XLA programs (seconds)

TEMPLATES = ["drake", "distracted-boyfriend", "success-kid", "nope-any-template"]


@pytest.fixture(scope="module", autouse=True)
def _tensorflow() -> None:
    if not tf_device.installed():
        skip_or_fail("TensorFlow is not installed (the train extra)")


def steppers(jit: bool = True) -> tuple[TransformerStepper, Any]:
    from engine.decoding.tf_step import TFStepper
    from engine.decoding.transformer_tf import TransformerCell

    weights = random_weights()
    return TransformerStepper(weights, CFG), TFStepper(
        lambda: TransformerCell(weights, CFG), jit=jit
    )


@pytest.mark.parametrize("seed", range(2))
def test_tf_step_equals_numpy_under_churn(seed: int) -> None:
    """30 steps of random joins, departures, reorders and repeated rows (beam): the tf step's
    logits equal the NumPy step's, and its positions advance the same way."""
    ref, got = steppers()
    assert got.backend == "tf:CPU:0" and got.max_chars == CFG.max_len
    rng = np.random.default_rng(seed)
    s_ref, s_got = ref.initial_state(0), got.initial_state(0)
    fed: list[int] = []  # positions fed per row
    for _ in range(30):
        if fed and rng.random() < 0.5:
            keep = rng.choice(len(fed), size=rng.integers(1, len(fed) + 2))
            s_ref = ref.take_state(s_ref, keep)
            s_got = got.take_state(s_got, keep)
            fed = [fed[k] for k in keep]
        done = np.array([i for i, n in enumerate(fed) if n < CFG.max_len], dtype=np.int64)
        if len(done) < len(fed):  # rows at their last position finish
            s_ref, s_got = ref.take_state(s_ref, done), got.take_state(s_got, done)
            fed = [fed[k] for k in done]
        if rng.random() < 0.4:
            n = int(rng.integers(1, 4))
            s_ref = ref.concat_states([s_ref, ref.initial_state(n)])
            s_got = got.concat_states([s_got, got.initial_state(n)])
            fed += [0] * n
        if not fed:
            continue
        rows = len(fed)
        chars = rng.integers(3, VOCAB.size, rows)
        boxes = rng.integers(0, 5, rows)  # past max_boxes too
        slots = rng.integers(0, 3, rows)
        y_ref, s_ref = ref.step(s_ref, chars, boxes, slots)
        y_got, s_got = got.step(s_got, chars, boxes, slots)
        assert y_got.shape == y_ref.shape == (rows, VOCAB.size)
        np.testing.assert_allclose(y_got, y_ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(s_got[1].numpy(), s_ref.pos)
        fed = [n + 1 for n in fed]


def test_a_row_does_not_depend_on_its_batch_and_graph_mode_matches() -> None:
    ref, got = steppers(jit=False)
    rng = np.random.default_rng(5)
    chars, boxes, slots = (
        rng.integers(3, VOCAB.size, 13),
        rng.integers(0, 3, 13),
        rng.integers(0, 3, 13),
    )
    s_got = got.initial_state(13)
    s_ref = ref.initial_state(13)
    for _ in range(3):  # three positions, then each row alone
        batched, s_got = got.step(s_got, chars, boxes, slots)
        want, s_ref = ref.step(s_ref, chars, boxes, slots)
        np.testing.assert_allclose(batched, want, rtol=1e-4, atol=1e-4)
    for i in (0, 6, 12):
        s = got.initial_state(1)
        for _ in range(3):
            alone, s = got.step(s, chars[i : i + 1], boxes[i : i + 1], slots[i : i + 1])
        np.testing.assert_allclose(alone[0], batched[i], rtol=1e-5, atol=1e-5)


def test_trained_transformer_same_captions_as_numpy(tiny_transformer: Path) -> None:
    """A trained transformer artifact through the tf decoder and the NumPy one: same captions
    and log-probabilities for the same seed, max_len cut to its positions by both."""
    tf_model = load_model(tiny_transformer, decoder="tf")
    np_model = load_model(tiny_transformer, decoder="numpy")
    assert tf_model.step_backend == "tf:CPU:0" and np_model.step_backend == "numpy"
    assert tf_model.max_chars == np_model.max_chars is not None
    for decoding in (
        Decoding("greedy"),
        Decoding("beam", beam_width=3),
        Decoding("top-p", top_p=0.9),
        Decoding("calibrated"),
    ):
        got = sample_captions(tf_model, TEMPLATES, decoding=decoding, seed=5)
        want = sample_captions(np_model, TEMPLATES, decoding=decoding, seed=5)
        assert [c.boxes for c in got] == [c.boxes for c in want], decoding.method
        np.testing.assert_allclose(
            [c.logprob for c in got], [c.logprob for c in want], rtol=1e-4, atol=1e-3
        )
