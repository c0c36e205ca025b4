"""Architectures: name -> the object that builds, trains and evaluates it (one per file,
beside its Keras graph). Their configs live in memebot/artifact/configs.py."""

from __future__ import annotations

from memebot.artifact.configs import CONFIGS, DEFAULT_ARCH
from training.models.base import Architecture
from training.models.char_gru import CharGRU
from training.models.lstm import LSTM
from training.models.seed_cnn import SeedCNN
from training.models.transformer import Transformer

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a for a in (CharGRU(), SeedCNN(), LSTM(), Transformer())
}
assert set(ARCHITECTURES) == set(CONFIGS)
__all__ = ["ARCHITECTURES", "CONFIGS", "DEFAULT_ARCH", "Architecture"]
