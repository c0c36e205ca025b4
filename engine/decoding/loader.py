"""Loading an artifact for decoding: read and check it whole, build the stepper, decode once."""

from __future__ import annotations

from pathlib import Path

from engine.decoding import seed_cnn
from engine.decoding.batch import sample_captions
from engine.decoding.model import DECODERS, LoadedModel, Stepper, char_gru_stepper
from engine.decoding.pickers import Decoding
from memebot.artifact.configs import CharGRUConfig, SeedCNNConfig
from memebot.artifact.load import read_artifact
from memebot.errors import ArtifactError


def load_model(path: Path, *, decoder: str = "auto", threads: int = 0) -> LoadedModel:
    """Read and check the whole artifact (schema, checksums, vocabulary, weight shapes), build
    its stepper and decode one short caption with it; any failure is an ArtifactError, raised
    before the caller swaps anything in. `decoder` and `threads`: see char_gru_stepper."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
    art = read_artifact(path, weights="served")
    stepper: Stepper
    if isinstance(art.config, CharGRUConfig):
        assert art.weights is not None
        stepper = char_gru_stepper(art.weights, art.config, decoder=decoder, threads=threads)
    else:
        assert isinstance(art.config, SeedCNNConfig)
        keras_model = seed_cnn.load_keras(path / "model.keras", art.config, art.vocab)
        stepper = seed_cnn.SeedStepper(keras_model, art.config, art.vocab)
    model = LoadedModel(
        art.meta.arch, art.config, art.vocab, art.templates, stepper, art.meta, path
    )
    test_decode(model)
    return model


def test_decode(model: LoadedModel) -> None:
    """Decode one short greedy caption on the generic template: a model that cannot step
    fails here, not on a user's request."""
    where = model.path or model.arch
    try:
        (caption,) = sample_captions(
            model, ["?"], n_boxes=[1], max_len=8, decoding=Decoding("greedy"), seed=0
        )
    except (ValueError, IndexError, TypeError, FloatingPointError) as e:
        raise ArtifactError(f"{where}: the model fails a test decode ({e})") from e
    if len(caption.boxes) != 1 or not caption.boxes[0]:
        raise ArtifactError(f"{where}: the model fails a test decode (no caption)")
