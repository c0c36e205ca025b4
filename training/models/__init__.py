"""Architectures: name -> the object that builds, trains and evaluates it (one per file,
beside its Keras graph). Their names and configs live in memebot/artifact/configs.py."""

from __future__ import annotations

from typing import assert_never

from memebot.artifact.configs import ARCH_NAMES, CONFIGS, DEFAULT_ARCH, ArchName
from training.models.base import Architecture
from training.models.char_gru import CharGRU
from training.models.lstm import LSTM
from training.models.seed_cnn import SeedCNN
from training.models.transformer import Transformer


def _architecture(name: ArchName) -> Architecture:
    match name:
        case "char-gru":
            return CharGRU()
        case "seed-cnn":
            return SeedCNN()
        case "lstm":
            return LSTM()
        case "transformer":
            return Transformer()
    assert_never(name)


ARCHITECTURES: dict[str, Architecture] = {a: _architecture(a) for a in ARCH_NAMES}
__all__ = ["ARCHITECTURES", "CONFIGS", "DEFAULT_ARCH", "Architecture"]
