"""The architectures the engine serves: for each, where its served weights come from and how
its stepper is built. A new architecture plugs in here once (its config, its weight shapes and
training live in memebot/artifact/configs.py and training/models/)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.decoding import lstm, seed_cnn
from engine.decoding.model import Stepper, char_gru_stepper
from memebot.artifact.configs import CharGRUConfig, LSTMConfig, SeedCNNConfig
from memebot.artifact.load import Artifact, read_npz_weights
from memebot.artifact.weights import WEIGHTS_FILE
from memebot.errors import ArtifactError

KERAS_FILE = "model.keras"


@dataclass(frozen=True)
class ServedArch:
    # The artifact file the served weights are read from: weights.npz (no ML framework) or
    # model.keras (TensorFlow imported when the model loads).
    weights_file: str
    # (artifact read without weights, decoder name, kernel threads) -> a checked stepper
    stepper: Callable[[Artifact, str, int], Stepper]


C = TypeVar("C", CharGRUConfig, SeedCNNConfig, LSTMConfig)


def _config(art: Artifact, kind: type[C]) -> C:
    if not isinstance(art.config, kind):  # config_from_dict pairs arch and config: a bug
        raise ArtifactError(f"{art.path}: {art.meta.arch} has a {type(art.config).__name__}")
    return art.config


def _char_gru(art: Artifact, decoder: str, threads: int) -> Stepper:
    config = _config(art, CharGRUConfig)
    return char_gru_stepper(read_npz_weights(art), config, decoder=decoder, threads=threads)


def _seed_cnn(art: Artifact, _decoder: str, _threads: int) -> Stepper:
    config = _config(art, SeedCNNConfig)
    keras_model = seed_cnn.load_keras(art.path / KERAS_FILE, config, art.vocab)
    return seed_cnn.SeedStepper(keras_model, config, art.vocab)


def _lstm(art: Artifact, decoder: str, _threads: int) -> Stepper:
    config = _config(art, LSTMConfig)
    if decoder not in ("auto", "numpy"):  # the compiled kernel is char-gru's
        raise ArtifactError(
            f"decoder {decoder!r}: an lstm model decodes with numpy only "
            f"(set MEMEBOT_DECODER to auto or numpy)"
        )
    return lstm.LSTMStepper(read_npz_weights(art), config)


SERVED: dict[str, ServedArch] = {
    "char-gru": ServedArch(WEIGHTS_FILE, _char_gru),
    "seed-cnn": ServedArch(KERAS_FILE, _seed_cnn),
    "lstm": ServedArch(WEIGHTS_FILE, _lstm),
}


def served_arch(art: Artifact) -> ServedArch:
    spec = SERVED.get(art.meta.arch)
    if spec is None:
        raise ArtifactError(
            f"{art.path}: the engine cannot serve architecture {art.meta.arch!r} "
            f"(it serves {', '.join(SERVED)})"
        )
    return spec
