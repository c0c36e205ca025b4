"""The artifact format that training writes and the engine reads (NumPy + stdlib only).

Submodules: `meta` (meta.json, checksums, atomic writes), `configs` (per-architecture config
dataclasses), `vocab`, `templates` (the template table), `weights` (weights.npz), and
`load` (one call that reads and checks a whole artifact).
"""

from __future__ import annotations

from memebot.artifact.configs import (
    CONFIGS,
    DEFAULT_ARCH,
    CharGRUConfig,
    LSTMConfig,
    SeedCNNConfig,
)
from memebot.artifact.meta import ArtifactMeta, read_meta, write_artifact
from memebot.artifact.templates import TemplateEntry, TemplateTable
from memebot.artifact.vocab import Vocab
from memebot.artifact.weights import WEIGHTS_FILE

__all__ = [
    "CONFIGS",
    "DEFAULT_ARCH",
    "WEIGHTS_FILE",
    "ArtifactMeta",
    "CharGRUConfig",
    "LSTMConfig",
    "SeedCNNConfig",
    "TemplateEntry",
    "TemplateTable",
    "Vocab",
    "read_meta",
    "write_artifact",
]
