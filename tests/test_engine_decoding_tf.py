"""The tf decoder (engine/decoding/tf_step.py, char_gru_tf.py, lstm_tf.py) against the NumPy
step of each architecture: logits and state over steps with rows joining and leaving, the same
captions for the same seed through the normal decoding path, the engine serving with it, and
how a bad choice fails."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.decoding import archs, tf_device
from engine.decoding.batch import Batch, sample_captions
from engine.decoding.char_gru import CharGRUStepper
from engine.decoding.jobs import CaptionRequest, make_job
from engine.decoding.loader import load_model
from engine.decoding.lstm import LSTMStepper
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from harness.engine import running_engine
from harness.factories import scratch_env
from harness.skips import skip_or_fail
from memebot.artifact.configs import CharGRUConfig, LSTMConfig
from memebot.artifact.vocab import Vocab
from memebot.errors import UsageError
from memebot.settings import Settings

pytestmark = pytest.mark.slow  # imports TensorFlow and compiles XLA programs (seconds)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "default"
# hidden 20 (3H = 60, 4H = 80), a 24-id vocabulary, 3 template slots, 2 layers: small, uneven.
SIZES: dict[str, Any] = dict(char_emb=8, template_emb=4, box_emb=3, hidden=20, layers=2)
CFG = CharGRUConfig(**SIZES)
# Per architecture with a tf cell: its config, NumPy stepper, tf cell ("module:class") and
# Keras graph (the training module whose build() makes it).
ARCHS: dict[str, tuple[Any, Any, str, str]] = {
    "char-gru": (
        CFG,
        CharGRUStepper,
        "engine.decoding.char_gru_tf:CharGRUCell",
        "training.models.char_gru",
    ),
    "lstm": (
        LSTMConfig(**SIZES),
        LSTMStepper,
        "engine.decoding.lstm_tf:LSTMCell",
        "training.models.lstm",
    ),
}
TEMPLATES = ["drake", "distracted-boyfriend", "success-kid", "nope-any-template"]


@pytest.fixture(scope="module", autouse=True)
def _tensorflow() -> None:
    if not tf_device.installed():
        skip_or_fail("TensorFlow is not installed (the train extra)")


@dataclasses.dataclass
class Case:
    """One architecture's random small model: its weights, NumPy stepper and tf stepper."""

    config: Any
    weights: dict[str, np.ndarray]
    numpy_class: Any
    cell: Any

    def numpy(self) -> Any:
        return self.numpy_class(self.weights, self.config)

    def tf(self, **kw: Any) -> Any:
        from engine.decoding.tf_step import TFStepper

        return TFStepper(lambda: self.cell(self.weights, self.config), **kw)


@pytest.fixture(scope="module", params=list(ARCHS))
def case(request: pytest.FixtureRequest) -> Case:
    from training.models.recurrent import weights_of

    config, numpy_class, cell, graph = ARCHS[request.param]
    v = Vocab.build(["hello world|bye|"])
    model = importlib.import_module(graph).build(config, v.size, n_slots=3)
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    module, name = cell.split(":")
    cell_class = getattr(importlib.import_module(module), name)
    return Case(config, weights_of(model), numpy_class, cell_class)


def numpy_layout(state: tuple[Any, ...]) -> np.ndarray:
    """The tf state (tensors [B, L, H]: h, then c for an LSTM) in the NumPy steps' [S, H, B]."""
    return np.concatenate([s.numpy() for s in state], axis=1).transpose(1, 2, 0)


def test_buckets() -> None:
    from engine.decoding.tf_step import bucket

    assert [bucket(r) for r in (0, 1, 2, 3, 5, 8, 9, 31, 32, 33, 64, 65, 256, 257)] == [
        1, 1, 2, 4, 8, 8, 16, 32, 32, 64, 64, 96, 256, 288,
    ]  # fmt: skip
    assert len({bucket(r) for r in range(1, 257)}) == 13  # programs compiled for 256 rows


def schedule() -> Iterator[tuple[np.ndarray | None, int]]:
    """(rows kept from the previous step, in order, or None for all; rows joining) per step:
    the batch goes 2, 5, 4, 4, 11, 3, 3, 1, 40 rows, crossing buckets up and down."""
    yield None, 2
    yield None, 3
    yield np.array([0, 2, 3, 4]), 0  # row 1 finished
    yield None, 0
    yield np.array([3, 1, 0, 2]), 7  # beam reordering, then seven join
    yield np.array([10, 4, 7]), 0
    yield None, 0
    yield np.array([1]), 0
    yield None, 39


def test_tf_step_equals_numpy_with_rows_joining_and_leaving(case: Case) -> None:
    ref, got = case.numpy(), case.tf()
    assert got.backend == "tf:CPU:0"
    rng = np.random.default_rng(3)
    s_ref, s_got = ref.initial_state(0), got.initial_state(0)
    steps = 0
    for keep, join in schedule():
        if keep is not None:
            s_ref, s_got = ref.take_state(s_ref, keep), got.take_state(s_got, keep)
        if join:
            s_ref = ref.concat_states([s_ref, ref.initial_state(join)])
            s_got = got.concat_states([s_got, got.initial_state(join)])
        rows = int(s_ref.shape[2])
        chars = rng.integers(0, 24, size=(rows,))
        boxes = rng.integers(0, 10, size=(rows,))  # past max_boxes too
        slots = rng.integers(0, 3, size=(rows,))
        for _ in range(2):  # two characters per batch shape
            y_ref, s_ref = ref.step(s_ref, chars, boxes, slots)
            y_got, s_got = got.step(s_got, chars, boxes, slots)
            assert y_got.shape == y_ref.shape == (rows, 24) and y_got.dtype == np.float32
            np.testing.assert_allclose(y_got, y_ref, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(numpy_layout(s_got), s_ref, rtol=1e-5, atol=1e-5)
            steps += 1
    assert steps == 18
    # One trace for every row count: the XLA programs differ by bucket, the function does not.
    assert got._step.experimental_get_tracing_count() == 1


def test_a_row_does_not_depend_on_its_batch(case: Case) -> None:
    """Padding rows and neighbours never leak into a row (what makes batched == unbatched)."""
    st = case.tf()
    rng = np.random.default_rng(5)
    chars, boxes, slots = rng.integers(0, 24, 13), rng.integers(0, 8, 13), rng.integers(0, 3, 13)
    batched, _ = st.step(st.initial_state(13), chars, boxes, slots)  # padded to 16
    for i in (0, 6, 12):
        alone, _ = st.step(
            st.initial_state(1), chars[i : i + 1], boxes[i : i + 1], slots[i : i + 1]
        )
        np.testing.assert_allclose(alone[0], batched[i], rtol=1e-5, atol=1e-5)


def test_graph_mode_without_xla_matches_too(case: Case) -> None:
    ref, got = case.numpy(), case.tf(jit=False)
    chars, boxes, slots = np.array([3, 4, 5]), np.array([0, 1, 2]), np.array([0, 1, 2])
    y_ref, _ = ref.step(ref.initial_state(3), chars, boxes, slots)
    y_got, _ = got.step(got.initial_state(3), chars, boxes, slots)
    np.testing.assert_allclose(y_got, y_ref, rtol=1e-4, atol=1e-4)


def test_bad_ids_and_shapes_are_refused(case: Case) -> None:
    st = case.tf()
    one = np.array([1])
    for chars, boxes, slots in [(np.array([24]), one, one), (one, one, np.array([3]))]:
        with pytest.raises(ValueError, match="outside the model's tables"):
            st.step(st.initial_state(1), chars, boxes, slots)
    with pytest.raises(ValueError, match="outside"):
        st.step(st.initial_state(1), np.array([-1]), one, one)
    with pytest.raises(ValueError, match="2 rows, ids for 1"):
        st.step(st.initial_state(2), one, one, one)
    none = np.array([], dtype=np.int64)
    logits, empty = st.step(st.initial_state(0), none, none, none)
    assert logits.shape == (0, 24)
    assert all(s.shape == (0, CFG.layers, CFG.hidden) for s in empty)


# -- the shipped model through the normal decoding path -----------------------------------------


@pytest.fixture(scope="module")
def models() -> tuple[LoadedModel, LoadedModel]:
    tf_model = load_model(SHIPPED, decoder="tf")
    assert tf_model.step_backend == "tf:CPU:0"
    return tf_model, load_model(SHIPPED, decoder="numpy")


@pytest.mark.parametrize(
    "decoding",
    [
        Decoding("greedy"),
        Decoding("beam", beam_width=3),
        Decoding("temperature", temperature=0.9),
        Decoding("calibrated"),
    ],
    ids=lambda d: d.method,
)
def test_same_captions_as_numpy_for_the_same_seed(models, decoding: Decoding) -> None:
    tf_model, np_model = models
    got = sample_captions(tf_model, TEMPLATES, decoding=decoding, seed=11)
    want = sample_captions(np_model, TEMPLATES, decoding=decoding, seed=11)
    assert [c.boxes for c in got] == [c.boxes for c in want]
    assert all(any(b for b in c.boxes) for c in got)
    np.testing.assert_allclose(
        [c.logprob for c in got], [c.logprob for c in want], rtol=1e-4, atol=1e-3
    )


def test_lstm_same_captions_as_numpy_for_the_same_seed(tiny_lstm_model: Path) -> None:
    """A trained lstm artifact through the tf decoder and the NumPy one: same captions."""
    tf_model = load_model(tiny_lstm_model, decoder="tf")
    np_model = load_model(tiny_lstm_model, decoder="numpy")
    assert tf_model.step_backend == "tf:CPU:0" and np_model.step_backend == "numpy"
    for decoding in (Decoding("greedy"), Decoding("beam", beam_width=3), Decoding("calibrated")):
        got = sample_captions(tf_model, TEMPLATES, decoding=decoding, seed=5)
        want = sample_captions(np_model, TEMPLATES, decoding=decoding, seed=5)
        assert [c.boxes for c in got] == [c.boxes for c in want], decoding.method


def test_continuous_batching_same_captions(models) -> None:
    """Requests of several methods join a running batch at different steps (and leave as they
    finish): every caption equals the NumPy decoder's under the same schedule."""

    def run(model: LoadedModel) -> tuple[list[list[list[str]]], list[int]]:
        methods = ["temperature", "beam", "top-k", "calibrated", "greedy", "threshold"]
        jobs = [
            make_job(
                model,
                CaptionRequest(
                    TEMPLATES[i % 4], 2, decoding=Decoding(m, beam_width=3, top_k=5), seed=i, n=2
                ),
            )
            for i, m in enumerate(methods)
        ]
        joins = {0: jobs[:2], 3: [jobs[2]], 7: [jobs[3]], 12: [jobs[4]], 20: [jobs[5]]}
        batch, rows, step = Batch(model), [], 0
        while step <= max(joins) or not batch.empty:
            batch.add(joins.get(step, []))
            if not batch.empty:
                rows.append(batch.rows)
                batch.step()
            step += 1
        return [[c.boxes for c in j.captions()] for j in jobs], rows

    (got, rows), (want, want_rows) = run(models[0]), run(models[1])
    assert got == want and rows == want_rows
    assert len(set(rows)) >= 4  # the batch grew and shrank


# -- choosing the decoder ------------------------------------------------------------------------


def test_tf_where_tensorflow_is_missing_is_one_line_naming_the_setting(monkeypatch) -> None:
    monkeypatch.setattr(tf_device, "installed", lambda: False)
    with pytest.raises(UsageError, match=r"^MEMEBOT_DECODER=tf: TensorFlow is not installed"):
        load_model(SHIPPED, decoder="tf")
    # auto never needs it
    assert load_model(SHIPPED, decoder="auto").step_backend in ("kernel", "numpy")


def test_tf_for_an_architecture_without_a_tf_step(monkeypatch) -> None:
    no_tf = dataclasses.replace(archs.SERVED["char-gru"], tf_cell=None)
    monkeypatch.setitem(archs.SERVED, "char-gru", no_tf)
    with pytest.raises(UsageError, match="MEMEBOT_DECODER=tf: architecture 'char-gru' has no tf"):
        load_model(SHIPPED, decoder="tf")
    monkeypatch.setattr(tf_device, "gpu_seen", lambda: True)
    assert load_model(SHIPPED, decoder="auto").step_backend in ("kernel", "numpy")


def test_auto_picks_tf_only_where_tensorflow_sees_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(tf_device, "gpu_seen", lambda: True)
    assert load_model(SHIPPED).step_backend.startswith("tf:")
    monkeypatch.setattr(tf_device, "gpu_seen", lambda: False)
    assert load_model(SHIPPED).step_backend in ("kernel", "numpy")


def test_gpu_hint_respects_cuda_visible_devices(monkeypatch) -> None:
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert not tf_device.gpu_hint()


def test_cli_reports_a_missing_tensorflow_in_one_line(monkeypatch, capsys, tmp_path) -> None:
    from memebot.cli import main

    monkeypatch.setattr(tf_device, "installed", lambda: False)
    monkeypatch.setenv("MEMEBOT_DECODER", "tf")
    monkeypatch.setenv("MEMEBOT_MODEL", str(SHIPPED))
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "drake", "--seed", "1", "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("memebot: error: MEMEBOT_DECODER=tf: ")
    assert "Traceback" not in err


def test_engine_serves_with_the_tf_decoder(tmp_path: Path) -> None:

    from engine.service import load_service

    s = Settings.from_env(
        scratch_env(tmp_path)
        | {
            "MEMEBOT_DECODER": "tf",
            "MEMEBOT_MAX_BATCH": "8",  # warm-up compiles the 1, 2, 4 and 8-row programs
            "MEMEBOT_MODEL": str(SHIPPED),
        }
    )
    service = load_service(s)
    assert service.model.step_backend == "tf:CPU:0"

    async def go() -> None:
        async with running_engine(service.model, s) as eng:
            http, url = eng.http, eng.url
            ready = await (await http.get(f"{url}/readyz")).json()
            assert ready["decoder"] == "tf:CPU:0"
            bodies = [
                {"template": "drake", "seed": i, "image": False, "decoding": d}
                for i, d in enumerate(["calibrated", "beam", "greedy", "temperature"])
            ]
            rs = await asyncio.gather(*(http.post(f"{url}/v1/memes", json=b) for b in bodies))
            for r in rs:
                body = await r.json()
                assert r.status == 200, body
                assert len(body["boxes"]) == 2 and any(body["boxes"])

    asyncio.run(go())
