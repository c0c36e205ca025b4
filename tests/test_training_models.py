from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.decoding.char_gru import CharGRUStepper
from engine.decoding.lstm import LSTMStepper
from engine.decoding.seed_cnn import encode_rows
from memebot.artifact.configs import CharGRUConfig, LSTMConfig, SeedCNNConfig, TransformerConfig
from memebot.artifact.templates import TemplateEntry, TemplateTable
from memebot.artifact.vocab import BOS, PAD, Vocab
from training.batches import SeedBatches, gru_arrays
from training.data import Caption
from training.models import char_gru, lstm, seed_cnn
from training.models.recurrent import weights_of


def test_one_registry_of_architecture_names() -> None:
    """Each layer's registry is built from ARCH_NAMES and answers to the same names."""
    from engine.decoding.archs import SERVED
    from memebot.artifact.configs import ARCH_NAMES, CONFIGS
    from training.models import ARCHITECTURES

    assert tuple(ARCHITECTURES) == tuple(SERVED) == tuple(CONFIGS) == ARCH_NAMES
    assert all(a.name == name for name, a in ARCHITECTURES.items())


def test_seed_rows_match_the_article() -> None:
    """The rows SeedBatches feeds training (and evaluation), decoded back to text."""
    text = "make|all the memes|"
    v = Vocab.build([text])
    table = TemplateTable([TemplateEntry("t", "T", 61533, (), 2, 1, 1)])
    data = SeedBatches(
        [Caption("t", ("make", "all the memes"))],
        table,
        v,
        SeedCNNConfig(),
        batch_size=64,
        shuffle=False,
    )
    x, y = data[0]
    rows = [(v.decode(r), v.decode([c])) for r, c in zip(x, y, strict=True)]
    assert rows[:7] == [
        ("000000061533  0  ", "m"),
        ("000000061533  0  m", "a"),
        ("000000061533  0  ma", "k"),
        ("000000061533  0  mak", "e"),
        ("000000061533  0  make", "|"),
        ("000000061533  1  make|", "a"),
        ("000000061533  1  make|a", "l"),
    ]
    assert rows[-1] == ("000000061533  1  make|all the memes", "|")
    assert len(rows) == len("make|all the memes|")


def test_seed_rows_left_padded_to_128() -> None:
    v = Vocab.build(["make all the memes|"])
    x = encode_rows(v, ["000000061533  0  ma"], 128)
    assert x.shape == (1, 128)
    assert (x[0, : 128 - 19] == PAD).all()
    assert v.decode(x[0, -19:]) == "000000061533  0  ma"
    long = encode_rows(v, ["x" * 200], 128)
    assert (long != PAD).all()  # keeps the rightmost 128 characters


@pytest.mark.slow
def test_seed_cnn_is_the_published_network() -> None:
    import keras

    m = seed_cnn.build(SeedCNNConfig(), 71)
    kinds = [type(layer).__name__ for layer in m.layers]
    assert kinds.count("Conv1D") == 5 and kinds.count("MaxPooling1D") == 4
    assert kinds.count("BatchNormalization") == 6 and kinds.count("Dropout") == 6
    assert kinds[-3:] == ["BatchNormalization", "Dropout", "Dense"]
    conv = [layer for layer in m.layers if isinstance(layer, keras.layers.Conv1D)]
    assert all(c.filters == 1024 and c.kernel_size == (5,) and c.padding == "same" for c in conv)
    assert m.output_shape == (None, 71)


def test_gru_arrays_teacher_forcing() -> None:
    v = Vocab.build(["ab|c|"])
    t = v.encode("ab|c|")
    x, y, w = gru_arrays([t], np.array([3]), v.box_end_id)
    n = len(t)
    assert x["chars"][0, 0] == BOS and (x["chars"][0, 1:n] == t[:-1]).all()
    assert (y[0, :n] == t).all() and (w[0, :n] == 1).all() and (w[0, n:] == 0).all()
    # box index of each target: markers strictly before it
    assert x["boxes"][0, :n].tolist() == [0, 0, 0, 1, 1]
    assert x["chars"].shape[1] == n  # PAD_TO = 1: the longest caption sets T
    x, y, w = gru_arrays([t], np.array([3]), v.box_end_id, pad_to=8)
    assert x["chars"].shape[1] == 8 and (w[0, n:] == 0).all() and (y[0, n:] == PAD).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "config_class", "stepper_class"),
    [(char_gru, CharGRUConfig, CharGRUStepper), (lstm, LSTMConfig, LSTMStepper)],
    ids=["char-gru", "lstm"],
)
def test_numpy_stepper_matches_keras(module: Any, config_class: Any, stepper_class: Any) -> None:
    """Teacher-forced full forward pass of the Keras model == the NumPy step, step by step."""
    cfg = config_class(char_emb=8, template_emb=4, box_emb=3, hidden=16, layers=2, max_boxes=2)
    v = Vocab.build(["hello world|bye|"])
    model = module.build(cfg, v.size, n_slots=3)
    rng = np.random.default_rng(0)
    for w in model.weights:  # non-trivial biases too
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    # box indices past max_boxes share its last embedding, in both
    texts = [v.encode("hello|world|o|"), v.encode("bye|x|")]
    x, _, _ = gru_arrays(texts, np.array([1, 2]), v.box_end_id)
    ref = np.asarray(model(x, training=False))  # [B,T,V]
    stepper = stepper_class(weights_of(model), cfg)
    state = stepper.initial_state(2)
    for t in range(x["chars"].shape[1]):
        logits, state = stepper.step(state, x["chars"][:, t], x["boxes"][:, t], x["template"])
        np.testing.assert_allclose(logits, ref[:, t], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_transformer_in_mixed_bfloat16_is_the_float32_model_rounded() -> None:
    """The same float32 variables under mixed_bfloat16: float32 logits close to float32's (the
    softmax and LayerNorm statistics stay float32), so weights move between precisions."""
    from training.models import transformer

    cfg = TransformerConfig(d_model=32, layers=2, heads=2, ff=48, max_len=24)
    v = Vocab.build(["hello world|bye|"])
    f32 = transformer.build(cfg, v.size, n_slots=3)
    bf16 = transformer.build(cfg, v.size, n_slots=3, dtype="mixed_bfloat16")
    bf16.set_weights(f32.get_weights())
    assert {w.dtype for w in bf16.weights} == {"float32"}
    x, _, _ = gru_arrays([v.encode("hello|world|"), v.encode("bye|")], np.array([1, 2]), 3)
    a = np.asarray(f32(x, training=False))
    b = np.asarray(bf16(x, training=False))
    assert b.dtype == np.float32 and np.isfinite(b).all()
    np.testing.assert_allclose(b, a, atol=0.05 * np.abs(a).max())
    assert (b.argmax(-1) == a.argmax(-1)).mean() > 0.9
