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
from memebot.errors import ArtifactError

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "default"


def test_every_architecture_is_served_from_one_entry() -> None:
    assert set(SERVED) == set(CONFIGS)
    assert SERVED["char-gru"].weights_file == WEIGHTS_FILE  # served with no ML framework
    assert SERVED["seed-cnn"].weights_file == KERAS_FILE
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
    art.meta = dataclasses.replace(art.meta, arch="lstm")
    with pytest.raises(ArtifactError, match="cannot serve architecture 'lstm'"):
        served_arch(art)
