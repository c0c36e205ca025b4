"""The engine's registry of served architectures: one entry per architecture a config exists
for, each saying where its weights come from; the loader builds every stepper through it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.decoding.archs import KERAS_FILE, SERVED, served_arch
from memebot.artifact.configs import CONFIGS
from memebot.artifact.load import read_artifact
from memebot.artifact.weights import WEIGHTS_FILE
from memebot.errors import ArtifactError, UsageError

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "default"


def test_every_architecture_is_served_from_one_entry() -> None:
    assert set(SERVED) == set(CONFIGS)
    assert SERVED["char-gru"].weights_file == WEIGHTS_FILE  # served with no ML framework
    assert SERVED["seed-cnn"].weights_file == KERAS_FILE
    assert SERVED["lstm"].weights_file == WEIGHTS_FILE
    assert SERVED["transformer"].weights_file == WEIGHTS_FILE


def test_the_shipped_artifact_holds_what_its_entry_serves_from() -> None:
    art = read_artifact(SHIPPED)
    assert served_arch(art).weights_file in art.meta.files
    shapes = art.config.weight_shapes(art.vocab.size, art.templates.n_slots)
    assert art.weights is not None and shapes is not None
    assert len(shapes) == len(art.weights)
    stepper = served_arch(art).stepper(art, "numpy", 1)
    assert stepper.condition(None) == 0


def test_an_architecture_without_an_entry_is_refused() -> None:
    art = read_artifact(SHIPPED, weights=False)
    art.meta = dataclasses.replace(art.meta, arch="rnn-from-the-future")
    with pytest.raises(ArtifactError, match="cannot serve architecture 'rnn-from-the-future'"):
        served_arch(art)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "named"),
    [("tiny_lstm_model", "an lstm model"), ("tiny_transformer", "a transformer model")],
    ids=["lstm", "transformer"],
)
def test_numpy_only_architectures_refuse_the_kernel(
    fixture: str, named: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lstm and the transformer have no compiled kernel: "auto" steps in NumPy (where
    TensorFlow sees no GPU), "kernel" is one clear error naming the setting."""
    from engine.decoding import tf_device
    from engine.decoding.loader import load_model

    path: Path = request.getfixturevalue(fixture)
    monkeypatch.setattr(tf_device, "gpu_seen", lambda: False)
    for decoder in ("auto", "numpy"):
        assert load_model(path, decoder=decoder).step_backend == "numpy"
    with pytest.raises(UsageError, match=rf"^MEMEBOT_DECODER=kernel: .* {named} decodes"):
        load_model(path, decoder="kernel")
    # Both have a tf step: where TensorFlow sees a GPU, auto picks it.
    monkeypatch.setattr(tf_device, "gpu_seen", lambda: True)
    assert load_model(path, decoder="auto").step_backend.startswith("tf:")
    art = read_artifact(path)
    shapes = art.config.weight_shapes(art.vocab.size, art.templates.n_slots)
    assert art.weights is not None and shapes is not None and len(shapes) == len(art.weights)
