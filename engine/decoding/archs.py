"""The architectures the engine serves: for each, where its served weights come from, how its
stepper is built and, optionally, its TensorFlow step for the tf decoder. A new architecture
plugs in here once (its config, its weight shapes and training live in
memebot/artifact/configs.py and training/models/).

`build_stepper` resolves MEMEBOT_DECODER: `tf` (or `auto` on a machine where TensorFlow sees a
GPU, tf_device.py) builds the architecture's `tf_cell` under tf_step.TFStepper; anything else
goes to its own `stepper`. TensorFlow is imported only on the tf path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, assert_never

from engine.decoding import lstm, seed_cnn, tf_device, transformer
from engine.decoding.model import Stepper, char_gru_stepper
from memebot.artifact.configs import (
    ARCH_NAMES,
    ArchName,
    CharGRUConfig,
    LSTMConfig,
    SeedCNNConfig,
    TransformerConfig,
)
from memebot.artifact.load import Artifact, read_npz_weights
from memebot.artifact.weights import WEIGHTS_FILE
from memebot.errors import ArtifactError, UsageError

if TYPE_CHECKING:
    from engine.decoding.tf_step import TFCell

KERAS_FILE = "model.keras"


@dataclass(frozen=True)
class ServedArch:
    # The artifact file the served weights are read from: weights.npz (no ML framework) or
    # model.keras (TensorFlow imported when the model loads).
    weights_file: str
    # (artifact read without weights, decoder name, kernel threads) -> a checked stepper
    stepper: Callable[[Artifact, str, int], Stepper]
    # The tf decoder's step: artifact -> a tf_step.TFCell, called in the device scope (its
    # module imports TensorFlow: import it inside). None: the architecture has no tf step.
    tf_cell: Callable[[Artifact], TFCell] | None = None


C = TypeVar("C", CharGRUConfig, SeedCNNConfig, LSTMConfig, TransformerConfig)


def _config(art: Artifact, kind: type[C]) -> C:
    if not isinstance(art.config, kind):  # config_from_dict pairs arch and config: a bug
        raise ArtifactError(f"{art.path}: {art.meta.arch} has a {type(art.config).__name__}")
    return art.config


def _char_gru(art: Artifact, decoder: str, threads: int) -> Stepper:
    config = _config(art, CharGRUConfig)
    return char_gru_stepper(read_npz_weights(art), config, decoder=decoder, threads=threads)


def _char_gru_tf(art: Artifact) -> TFCell:
    from engine.decoding.char_gru_tf import CharGRUCell

    return CharGRUCell(read_npz_weights(art), _config(art, CharGRUConfig))


def _seed_cnn(art: Artifact, _decoder: str, _threads: int) -> Stepper:
    config = _config(art, SeedCNNConfig)
    keras_model = seed_cnn.load_keras(art.path / KERAS_FILE, config, art.vocab)
    return seed_cnn.SeedStepper(keras_model, config, art.vocab)


def _refuse_kernel(decoder: str, model: str, decodes: str) -> None:
    """MEMEBOT_DECODER=kernel for an architecture other than char-gru: one line naming it."""
    if decoder == "kernel":  # the compiled kernel is char-gru's
        raise UsageError(
            f"MEMEBOT_DECODER=kernel: the compiled kernel steps char-gru only; {model} "
            f"decodes with {decodes}; use auto"
        )


def _lstm(art: Artifact, decoder: str, _threads: int) -> Stepper:
    config = _config(art, LSTMConfig)
    _refuse_kernel(decoder, "an lstm model", "numpy (or tf)")
    return lstm.LSTMStepper(read_npz_weights(art), config)


def _lstm_tf(art: Artifact) -> TFCell:
    from engine.decoding.lstm_tf import LSTMCell

    return LSTMCell(read_npz_weights(art), _config(art, LSTMConfig))


def _transformer(art: Artifact, decoder: str, _threads: int) -> Stepper:
    config = _config(art, TransformerConfig)
    _refuse_kernel(decoder, "a transformer model", "numpy (its KV-cache step) or tf")
    return transformer.TransformerStepper(read_npz_weights(art), config)


def _transformer_tf(art: Artifact) -> TFCell:
    from engine.decoding.transformer_tf import TransformerCell

    return TransformerCell(read_npz_weights(art), _config(art, TransformerConfig))


def _served(arch: ArchName) -> ServedArch:
    match arch:
        case "char-gru":
            return ServedArch(WEIGHTS_FILE, _char_gru, tf_cell=_char_gru_tf)
        case "seed-cnn":
            return ServedArch(KERAS_FILE, _seed_cnn)
        case "lstm":
            return ServedArch(WEIGHTS_FILE, _lstm, tf_cell=_lstm_tf)
        case "transformer":
            return ServedArch(WEIGHTS_FILE, _transformer, tf_cell=_transformer_tf)
    assert_never(arch)


SERVED: dict[str, ServedArch] = {a: _served(a) for a in ARCH_NAMES}


def served_arch(art: Artifact) -> ServedArch:
    spec = SERVED.get(art.meta.arch)
    if spec is None:
        raise ArtifactError(
            f"{art.path}: the engine cannot serve architecture {art.meta.arch!r} "
            f"(it serves {', '.join(SERVED)})"
        )
    return spec


def build_stepper(art: Artifact, decoder: str, threads: int) -> Stepper:
    """The stepper MEMEBOT_DECODER asks for (`decoder`, checked by the caller). `tf` where
    TensorFlow is not installed, or for an architecture without a tf step, is a UsageError
    naming the setting; `auto` picks tf only where TensorFlow sees a GPU, else the
    architecture's own choice."""
    spec = served_arch(art)
    use_tf = decoder == "tf" or (
        decoder == "auto" and spec.tf_cell is not None and tf_device.gpu_seen()
    )
    if not use_tf:
        return spec.stepper(art, decoder, threads)
    if spec.tf_cell is None:
        has = ", ".join(a for a, s in SERVED.items() if s.tf_cell is not None)
        raise UsageError(
            f"MEMEBOT_DECODER=tf: architecture {art.meta.arch!r} has no tf step "
            f"(tf decodes {has}); use auto"
        )
    if not tf_device.installed():
        raise UsageError(
            "MEMEBOT_DECODER=tf: TensorFlow is not installed here "
            "(pip install 'memebot[gpu]', or 'memebot[train]' for the CPU, or use auto)"
        )
    from engine.decoding.tf_step import TFStepper

    cell = spec.tf_cell
    return TFStepper(lambda: cell(art))
