"""The transformer's KV-cache step (engine/decoding/transformer.py): equal to the Keras model's
full forward pass at every position, with rows at different positions, after beam reorders;
its cache moves with the rows; every decoding method runs on it; max_len is cut to its
positions. The NumPy-only tests use random weights of the config's shapes (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.decoding.batch import run_jobs, sample_captions
from engine.decoding.jobs import CaptionRequest, make_job
from engine.decoding.pickers import METHODS, Decoding
from engine.decoding.transformer import KVCache, TransformerStepper
from harness.transformer import CFG, VOCAB, random_model, random_weights
from memebot.artifact.configs import TransformerConfig


def step_rows(stepper: TransformerStepper, rows: list[list[int]], slot: int = 1) -> np.ndarray:
    """Logits [T, B, V] of feeding each row its ids (equal lengths), boxes 0, together."""
    state = stepper.initial_state(len(rows))
    out = []
    for t in range(len(rows[0])):
        chars = np.array([r[t] for r in rows])
        logits, state = stepper.step(state, chars, np.zeros_like(chars), np.full_like(chars, slot))
        out.append(logits)
    return np.stack(out)


def test_rows_joining_late_and_reordered_step_as_if_alone() -> None:
    """A row's logits depend on its own ids only: rows joining at other positions (continuous
    batching) and a beam-style reorder with a repeated row (its cache copied, not shared)."""
    st = TransformerStepper(random_weights(), CFG)
    a, b, c = [1, 5, 6, 7, 8, 9, 10], [1, 9, 8, 7, 6, 5, 4], [1, 4, 4, 11]
    alone = {name: step_rows(st, [ids]) for name, ids in (("a", a), ("b", b), ("c", c))}
    state = st.initial_state(2)
    one = np.ones(2, dtype=np.int64)
    for t in range(3):  # a and b, three ids each
        logits, state = st.step(state, np.array([a[t], b[t]]), 0 * one, one)
        np.testing.assert_allclose(logits, [alone["a"][t, 0], alone["b"][t, 0]], atol=1e-5)
    state = st.concat_states([state, st.initial_state(1)])  # c joins at position 0
    state = st.take_state(state, np.array([2, 1, 1]))  # a leaves; b continues twice
    ref_b2 = step_rows(st, [b[:3] + c[:4]])  # the second copy of b takes c's ids from here
    for fed, t in enumerate(range(3, 7)):
        ids = np.array([c[fed], b[t], c[fed]])
        logits, state = st.step(state, ids, np.zeros(3, dtype=np.int64), np.ones(3, np.int64))
        np.testing.assert_allclose(logits[0], alone["c"][fed, 0], atol=1e-5)
        np.testing.assert_allclose(logits[1], alone["b"][t, 0], atol=1e-5)
        np.testing.assert_allclose(logits[2], ref_b2[t, 0], atol=1e-5)
    assert state.pos.tolist() == [4, 7, 7]


def test_rows_move_without_their_caches_except_a_repeated_one() -> None:
    st = TransformerStepper(random_weights(), CFG)
    ids = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    z = np.zeros(10, dtype=np.int64)
    _, state = st.step(st.initial_state(10), ids, z, z)
    assert st.take_state(state, np.arange(10)) is state
    left = st.take_state(state, np.array([9, 0, 4, 5, 6, 7]))  # rows leave, others reorder
    assert left.kv is state.kv and left.slot.tolist() == [9, 0, 4, 5, 6, 7]
    twice = st.take_state(left, np.array([1, 1, 2, 3, 4, 5]))  # beam: row 0 continued twice
    assert twice.kv is state.kv and twice.slot[0] == 0 and twice.slot[1] not in left.slot
    np.testing.assert_array_equal(
        state.kv[:, :, twice.slot[1], :, :1], state.kv[:, :, 0, :, :1]
    )  # the copy: the fed position
    joined = st.concat_states([twice, st.initial_state(3)])  # 3 requests join: free slots
    assert joined.kv is state.kv and sorted(joined.slot.tolist()) == list(range(9))
    assert joined.pos.tolist() == [1] * 6 + [0] * 3
    grown = st.concat_states([joined, st.initial_state(4)])  # one more than is free: grows
    assert grown.slots == 15 and len(set(grown.slot.tolist())) == 13
    small = st.take_state(grown, np.array([12, 0, 0]))  # < half the store used: compacted
    assert small.slots == 3 and small.slot.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(small.kv[:, :, 1], small.kv[:, :, 2])
    np.testing.assert_array_equal(small.kv[:, :, 1, :, :1], state.kv[:, :, 0, :, :1])
    empty = st.take_state(state, np.zeros(0, dtype=np.int64))
    assert isinstance(empty, KVCache) and len(empty) == 0 and empty.slots == 0


@pytest.mark.parametrize("seed", range(4))
def test_continuous_batching_churn_matches_rows_stepped_alone(seed: int) -> None:
    """Random joins, departures, reorders and repeated rows over 40 steps (the store grows,
    frees, reuses and compacts slots): every row's logits equal those of its ids fed alone."""
    st = TransformerStepper(random_weights(), CFG)
    rng = np.random.default_rng(seed)
    state = st.initial_state(0)
    texts: list[list[int]] = []  # each row's ids fed so far
    for _ in range(40):
        if len(texts) and rng.random() < 0.5:  # rows leave, reorder, repeat
            keep = rng.choice(len(texts), size=rng.integers(1, len(texts) + 2))
            state = st.take_state(state, keep)
            texts = [list(texts[k]) for k in keep]
        full = [i for i, row in enumerate(texts) if len(row) == CFG.max_len]
        if full:  # rows at the last position finish
            keep = np.array([i for i in range(len(texts)) if i not in full], dtype=np.int64)
            state = st.take_state(state, keep)
            texts = [texts[k] for k in keep]
        if rng.random() < 0.4:  # requests join
            n = int(rng.integers(1, 4))
            state = st.concat_states([state, st.initial_state(n)])
            texts += [[] for _ in range(n)]
        if not texts:
            continue
        ids = rng.integers(3, VOCAB.size, len(texts))
        z = np.zeros(len(texts), dtype=np.int64)
        logits, state = st.step(state, ids, z, z + 1)
        for row, c in zip(texts, ids, strict=True):
            row.append(int(c))
        for i, row in enumerate(texts):
            np.testing.assert_allclose(logits[i], step_rows(st, [row])[-1, 0], atol=1e-4)


def test_a_row_past_its_positions_is_refused() -> None:
    st = TransformerStepper(random_weights(), CFG)
    state = KVCache(st.initial_state(1).kv, np.arange(1), np.array([CFG.max_len]))
    with pytest.raises(ValueError, match="20 positions"):
        st.step(state, np.array([1]), np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="2 characters for a state of 1 rows"):
        st.step(st.initial_state(1), np.array([1, 2]), np.zeros(2, int), np.zeros(2, int))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_writes_valid_captions(method: str) -> None:
    m = random_model()
    reqs = [
        CaptionRequest("two-buttons", 2, max_len=18, decoding=Decoding(method), seed=1, n=2),
        CaptionRequest("success-kid", 1, start="he", decoding=Decoding(method), seed=2),
        CaptionRequest("unknown", 3, max_len=200, decoding=Decoding(method), seed=3),
    ]
    jobs = [make_job(m, r) for r in reqs]
    run_jobs(m, jobs)
    for job, req in zip(jobs, reqs, strict=True):
        for s in job.captions():
            assert len(s.boxes) == req.n_boxes and all(s.boxes), s
            assert len(s.text) <= min(req.max_len, CFG.max_len), s  # max_len 200 is cut to 20
            assert s.text.startswith(req.start) and s.logprob < 0


def test_max_len_is_cut_to_the_positions_and_a_start_must_fit_them() -> None:
    m = random_model()
    assert m.max_chars == CFG.max_len == 20 and m.step_backend == "numpy"
    job = make_job(m, CaptionRequest("two-buttons", 2, max_len=200))
    assert job.req.max_len == 20
    (s,) = sample_captions(m, ["two-buttons"], n_boxes=[2], start="x" * 17, max_len=200, seed=0)
    assert s.boxes[0].startswith("x" * 17) and len(s.text) <= 20
    with pytest.raises(ValueError, match="in the 20 characters this model writes"):
        make_job(m, CaptionRequest("two-buttons", 2, start="x" * 18, max_len=200))


@pytest.mark.slow
def test_cached_step_equals_the_keras_forward_pass() -> None:
    """Logits at every position of captions of different lengths (right-padded in the full
    pass), boxes and templates included, then after a beam reorder (rows continued twice)."""
    from training.batches import gru_arrays
    from training.models import transformer
    from training.models.char_gru import weights_of

    cfg = TransformerConfig(d_model=16, layers=2, heads=2, ff=24, max_len=24, max_boxes=2)
    model = transformer.build(cfg, VOCAB.size, n_slots=3)
    rng = np.random.default_rng(0)
    for w in model.weights:  # non-trivial biases and norms too
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    st = TransformerStepper(weights_of(model), cfg)

    def forward(texts: list[str], slots: list[int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        x, _, _ = gru_arrays([VOCAB.encode(t) for t in texts], np.array(slots), VOCAB.box_end_id)
        return x, np.asarray(model(x, training=False))  # [B,T,V]

    texts = ["hello|world|bye|", "bye|ho|", "when my dog|eats|"]  # 3 boxes: past max_boxes
    x, ref = forward(texts, [1, 2, 0])
    state = st.initial_state(3)
    for t in range(x["chars"].shape[1]):  # the full pass pads the shorter rows at the end
        logits, state = st.step(state, x["chars"][:, t], x["boxes"][:, t], x["template"])
        live = [i for i, s in enumerate(texts) if t < len(s)]
        np.testing.assert_allclose(logits[live], ref[live, t], rtol=1e-4, atol=1e-4)
    k = 5
    # Beam reorder after k ids: row 0 continues texts[1], rows 1 and 2 both continue texts[0].
    state = st.initial_state(3)
    for t in range(k):
        _, state = st.step(state, x["chars"][:, t], x["boxes"][:, t], x["template"])
    state = st.take_state(state, np.array([1, 0, 0]))
    after = [texts[1], texts[0], texts[0][:k] + "ld|"]
    x2, ref2 = forward(after, [2, 1, 1])
    for t in range(k, 7):
        logits, state = st.step(state, x2["chars"][:, t], x2["boxes"][:, t], x2["template"])
        np.testing.assert_allclose(logits, ref2[:, t], rtol=1e-4, atol=1e-4)
