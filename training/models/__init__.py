"""Model registry: architecture name -> config class. One model per file."""

from __future__ import annotations

from training.models.char_gru import CharGRUConfig
from training.models.seed_cnn import SeedCNNConfig

DEFAULT_ARCH = "char-gru"
CONFIGS: dict[str, type[CharGRUConfig] | type[SeedCNNConfig]] = {
    "char-gru": CharGRUConfig,
    "seed-cnn": SeedCNNConfig,
}
