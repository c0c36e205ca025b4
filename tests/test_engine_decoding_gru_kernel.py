"""The compiled char-gru step (engine/decoding/_gru_step.c) against the NumPy stepper."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from engine.decoding import gru_kernel
from engine.decoding.char_gru import CharGRUStepper
from engine.decoding.loader import load_model
from engine.decoding.model import log_softmax
from harness.skips import skip_or_fail
from memebot.artifact.configs import CharGRUConfig
from memebot.artifact.vocab import N_SPECIAL, Vocab
from memebot.errors import ArtifactError
from training.models import char_gru

# hidden 20 and a 24-id vocabulary: 3H and V are not multiples of 16 (the padding paths).
CFG = CharGRUConfig(char_emb=8, template_emb=4, box_emb=3, hidden=20, layers=2)


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    if not gru_kernel.available():
        skip_or_fail("the compiled char-gru kernel was not built (no C compiler at install?)")
    v = Vocab.build(["hello world|bye|"])
    model = char_gru.build(CFG, v.size, n_slots=3)
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    return char_gru.weights_of(model)


def vocab_size(weights: dict[str, np.ndarray]) -> int:
    (bias,) = [w for k, w in weights.items() if k.endswith("logits/bias")]
    return len(bias)


def rounded(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same model with every matrix the kernel keeps in float16 rounded to float16."""
    return {
        k: w.astype(np.float16).astype(np.float32) if k.endswith("kernel") else w
        for k, w in weights.items()
    }


def run(stepper, chars: np.ndarray, boxes: np.ndarray, slots: np.ndarray) -> list[np.ndarray]:
    """Log-probabilities [B,V] at each of chars.shape[1] steps, the special ids at -inf (what
    the kernel returns; the NumPy stepper's logits are turned into that here)."""
    state = stepper.initial_state(chars.shape[0])
    out = []
    for t in range(chars.shape[1]):
        y, state = stepper.step(state, chars[:, t], boxes[:, t], slots)
        if not getattr(stepper, "returns_logp", False):
            y = log_softmax(np.asarray(y, dtype=np.float64))
            y[:, :N_SPECIAL] = -np.inf
        out.append(np.array(y))
    return out


def inputs(rows: int, steps: int = 6, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    chars = rng.integers(0, 13, (rows, steps))
    boxes = rng.integers(0, 10, (rows, steps))  # past max_boxes too
    slots = rng.integers(0, 3, rows)
    return chars, boxes, slots


@pytest.mark.parametrize("rows", [1, 3, 4, 8, 13])  # tiles of 8, 4 and 1 rows
def test_kernel_matches_numpy_on_float16_weights(weights, rows: int) -> None:
    chars, boxes, slots = inputs(rows)
    ref = run(CharGRUStepper(rounded(weights), CFG), chars, boxes, slots)
    got = run(gru_kernel.KernelGRUStepper(weights, CFG), chars, boxes, slots)
    for r, g in zip(ref, got, strict=True):
        assert g.shape == r.shape == (rows, vocab_size(weights)) == (rows, 24)
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_float16_rounding_moves_logits_little(weights) -> None:
    chars, boxes, slots = inputs(4)
    exact = run(CharGRUStepper(weights, CFG), chars, boxes, slots)
    got = run(gru_kernel.KernelGRUStepper(weights, CFG), chars, boxes, slots)
    worst = max(
        float(np.abs(e[:, N_SPECIAL:] - g[:, N_SPECIAL:]).max())
        for e, g in zip(exact, got, strict=True)
    )
    assert 0 < worst < 0.05  # rounded, so not identical; weights here are N(0, 0.5)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_rows_are_bit_identical_alone_batched_and_threaded(weights, threads: int) -> None:
    chars, boxes, slots = inputs(13)
    batched = run(gru_kernel.KernelGRUStepper(weights, CFG, threads=threads), chars, boxes, slots)
    alone = gru_kernel.KernelGRUStepper(weights, CFG, threads=1)
    for i in range(13):
        row = run(alone, chars[i : i + 1], boxes[i : i + 1], slots[i : i + 1])
        for t, logits in enumerate(row):
            assert np.array_equal(logits[0], batched[t][i])


def test_state_reorder_and_join(weights) -> None:
    k = gru_kernel.KernelGRUStepper(weights, CFG)
    a, b = k.initial_state(2), k.initial_state(3)
    _, a = k.step(a, np.array([4, 5]), np.array([0, 1]), np.array([1, 2]))
    joined = k.concat_states([a, b])
    assert joined.shape == (CFG.layers, 5, k.hidden)
    assert np.array_equal(k.take_state(joined, np.array([1, 0])), a[:, ::-1])
    none = np.array([], dtype=np.int64)
    logits, empty = k.step(k.initial_state(0), none, none, none)
    assert logits.shape == (0, vocab_size(weights)) and empty.shape == (CFG.layers, 0, k.hidden)


def test_ids_outside_the_tables_are_refused(weights) -> None:
    k = gru_kernel.KernelGRUStepper(weights, CFG)
    one = np.array([1])
    for chars, boxes, slots in [(np.array([99]), one, one), (one, one, np.array([7]))]:
        with pytest.raises(ValueError, match="outside the model's tables"):
            k.step(k.initial_state(1), chars, boxes, slots)
    with pytest.raises(ValueError, match="do not match"):
        k.step(k.initial_state(2), one, one, one)  # a state for 2 rows, ids for 1
    logp, _ = k.step(k.initial_state(1), one, np.array([50]), one)  # box past max_boxes: last
    assert np.isfinite(logp[0, N_SPECIAL:]).all() and (logp[0, :N_SPECIAL] == -np.inf).all()
    assert 0 < np.exp(logp[0, N_SPECIAL:].astype(np.float64)).sum() <= 1 + 1e-5


@pytest.mark.slow
def test_loaded_model_picks_the_decoder(tiny_model: Path, monkeypatch) -> None:
    if not gru_kernel.available():
        skip_or_fail("the compiled char-gru kernel was not built (no C compiler at install?)")
    # auto: the kernel where it has its AVX-512 or AVX2 tiles (faster than NumPy), else NumPy.
    # Built for this machine (-march=native), or for AVX2 on an AVX-512 one, it has them where
    # the CPU has AVX-512, or AVX2 with F16C and FMA.
    bits = gru_kernel.tile_bits()
    assert bits in (0, 256, 512) and gru_kernel.preferred() == (bits >= 256)
    flags = set(Path("/proc/cpuinfo").read_text().split()) if sys.platform == "linux" else None
    if flags is not None:
        assert bits < 512 or "avx512f" in flags  # the build runs here: no wider than the CPU
        fast = "avx512f" in flags or {"avx2", "f16c", "fma"} <= flags
        assert gru_kernel.preferred() == fast
    assert load_model(tiny_model).step_backend == ("kernel" if gru_kernel.preferred() else "numpy")
    assert load_model(tiny_model, decoder="kernel").step_backend == "kernel"
    assert load_model(tiny_model, decoder="numpy").step_backend == "numpy"
    with pytest.raises(ValueError, match="decoder 'gpu'"):
        load_model(tiny_model, decoder="gpu")
    # Where the kernel could not be built: auto falls back, an explicit request is refused.
    monkeypatch.setattr(gru_kernel, "available", lambda: False)
    monkeypatch.setattr(gru_kernel, "preferred", lambda: False)
    assert load_model(tiny_model).step_backend == "numpy"
    with pytest.raises(ArtifactError, match="not built"):
        load_model(tiny_model, decoder="kernel")


@pytest.mark.parametrize(
    "name",
    [
        "gru_0/gru_cell/kernel",  # rounded to float16, then folded into the input tables
        "gru_1/gru_cell/kernel",
        "gru_0/gru_cell/recurrent_kernel",
        "logits/kernel",
    ],
)
# The weights are made to overflow float16 on purpose: NumPy's warning about it is expected.
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_weights_past_float16_are_refused_and_auto_steps_in_numpy(weights, name: str) -> None:
    """One weight past float16's 65504 (a blown-up training run): the kernel would store inf
    and answer NaN, so it refuses the model; `auto` then decodes in NumPy, finitely."""
    from engine.decoding.model import char_gru_stepper

    big = {k: w.copy() for k, w in weights.items()}
    (key,) = [k for k in big if k.endswith(name)]
    big[key].flat[3] = 7e4
    with pytest.raises(gru_kernel.Float16Overflow, match="float16's range"):
        gru_kernel.KernelGRUStepper(big, CFG)
    with pytest.raises(ArtifactError, match="use the numpy decoder"):
        char_gru_stepper(big, CFG, decoder="kernel")
    auto = char_gru_stepper(big, CFG, decoder="auto")
    assert auto.backend == "numpy"
    chars, boxes, slots = inputs(3)
    assert all(np.isfinite(y[:, N_SPECIAL:]).all() for y in run(auto, chars, boxes, slots))


@pytest.mark.parametrize(
    ("given", "want"),
    [
        ({}, ("passive", "-")),
        ({"OMP_WAIT_POLICY": "active"}, ("active", "-")),
        ({"GOMP_SPINCOUNT": "5"}, ("-", "5")),
    ],
)
def test_openmp_threads_sleep_while_they_wait_unless_told_otherwise(
    given: dict[str, str], want: tuple[str, str]
) -> None:
    """Loading the kernel sets OMP_WAIT_POLICY (libgomp reads it once, at load) to passive,
    unless the environment sets it or GOMP_SPINCOUNT: libgomp's long spin on a shared 2-core
    machine makes a batched step several times slower (bench/kernel_contention.py)."""
    import os
    import subprocess

    if not gru_kernel.available():
        skip_or_fail("the compiled char-gru kernel was not built (no C compiler at install?)")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = (
        "import os; from engine.decoding import gru_kernel; assert gru_kernel.available(); "
        "print(os.environ.get('OMP_WAIT_POLICY', '-'), os.environ.get('GOMP_SPINCOUNT', '-'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, **given},
        capture_output=True,
        text=True,
        check=True,
    )
    assert tuple(out.stdout.split()) == want
