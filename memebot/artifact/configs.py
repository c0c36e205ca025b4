"""Per-architecture configs: what meta.json's `config` holds and every model is rebuilt from.

Values are checked on construction (`ConfigError`, naming the field): an artifact whose
meta.json says `hidden: "abc"` or `-3` is refused before any weights are read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from memebot.errors import ArtifactError


class ConfigError(ArtifactError, ValueError):
    """A config value of the wrong type or out of range (the message names the field)."""


class _Config:
    # Fields whose value is a probability-like share in [0, 1); every int field is >= 1.
    SHARES: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if f.name in self.SHARES:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise ConfigError(f"config field {f.name}: expected a number, got {v!r}")
                if not (math.isfinite(v) and 0.0 <= v < 1.0):
                    raise ConfigError(f"config field {f.name}: must be in [0, 1), got {v!r}")
                setattr(self, f.name, float(v))
            else:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ConfigError(f"config field {f.name}: expected an integer, got {v!r}")
                if v < 1:
                    raise ConfigError(f"config field {f.name}: must be at least 1, got {v!r}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class CharGRUConfig(_Config):
    SHARES: ClassVar[tuple[str, ...]] = ("dropout", "template_dropout")

    char_emb: int = 48  # character embedding width
    template_emb: int = 32  # template conditioning width (slot 0 = any template)
    box_emb: int = 8  # box-index conditioning width
    max_boxes: int = 8  # box indices >= this share the last embedding
    hidden: int = 384  # GRU width of every layer
    layers: int = 2  # stacked GRU layers
    dropout: float = 0.0  # between GRU layers (training only)
    template_dropout: float = 0.1  # share of training captions shown as "any template"


@dataclass
class SeedCNNConfig(_Config):
    SHARES: ClassVar[tuple[str, ...]] = ("dropout", "template_dropout")

    seq_len: int = 128  # input row length (left-padded)
    embedding: int = 16  # character embedding width
    filters: int = 1024  # Conv1D filters in each of the five conv layers
    kernel: int = 5  # Conv1D kernel width
    dense: int = 1024  # width of the dense layer before the softmax
    dropout: float = 0.25  # after every conv block and the dense layer
    template_dropout: float = 0.1  # share of rows shown with the generic id 000000000000


ModelConfig = CharGRUConfig | SeedCNNConfig
DEFAULT_ARCH = "char-gru"
CONFIGS: dict[str, type[CharGRUConfig] | type[SeedCNNConfig]] = {
    "char-gru": CharGRUConfig,
    "seed-cnn": SeedCNNConfig,
}


def config_from_dict(arch: str, obj: Any, source: object = "meta.json") -> ModelConfig:
    """meta.json's `config` for `arch`, checked: unknown fields, types and ranges."""
    cls = CONFIGS.get(arch)
    if cls is None:
        raise ArtifactError(f"{source}: unknown architecture {arch!r}")
    if not isinstance(obj, dict):
        raise ArtifactError(f"{source}: config is not a JSON object")
    names = {f.name for f in fields(cls)}
    unknown = set(obj) - names
    if unknown:
        raise ArtifactError(f"{source}: config has unknown fields {sorted(unknown)}")
    try:
        return cls(**obj)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from e
