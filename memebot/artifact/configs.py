"""Per-architecture configs: what meta.json's `config` holds and every model is rebuilt from.

Values are checked on construction (`ConfigError`, naming the field): an artifact whose
meta.json says `hidden: "abc"` or `-3` is refused before any weights are read, and
`memebot train --set hidden=-4` before any data is read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, assert_never, get_args, get_type_hints

from memebot.errors import ArtifactError


class ConfigError(ArtifactError, ValueError):
    """A config value of the wrong type or out of range; `field` names it."""

    def __init__(self, field: str, problem: str, value: object):
        super().__init__(f"config field {field}: {problem}, got {value!r}")
        self.field, self.problem, self.value = field, problem, value


def config_problems(config: Any) -> list[tuple[str, str]]:
    """(field, what is wrong) for each config field of the wrong type or out of range; [] when
    all are fine.

    A field may declare its range as `field(metadata={"min": .., "max": .., "max_open": ..})`;
    otherwise the rule follows its type and name, which covers every architecture so far:
    integers are widths, counts or lengths (>= 1), floats named *dropout or *rate are
    fractions in [0, 1), and every float is finite.
    """
    hints = get_type_hints(type(config))
    problems = []
    for f in fields(config):
        value, kind = getattr(config, f.name), hints.get(f.name)
        if kind is bool:
            if not isinstance(value, bool):
                problems.append((f.name, "expected true or false"))
            continue
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append((f.name, "expected an integer"))
            continue
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append((f.name, "expected a number"))
                continue
            if not math.isfinite(value):
                problems.append((f.name, "must be a finite number"))
                continue
        lo, hi, hi_open = f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("max_open")
        if lo is None and kind is int:
            lo = 1
        if lo is None and hi is None and kind is float and f.name.endswith(("dropout", "rate")):
            lo, hi, hi_open = 0.0, 1.0, True
        if lo is not None and value < lo:
            problems.append((f.name, f"must be >= {lo}"))
        elif hi is not None and (value >= hi if hi_open else value > hi):
            problems.append((f.name, f"must be {'<' if hi_open else '<='} {hi}"))
    return problems


class _Config:
    """Checks its values on construction (config_problems): the first problem is raised."""

    def __post_init__(self) -> None:
        if problems := config_problems(self):
            name, problem = problems[0]
            raise ConfigError(name, problem, getattr(self, name))
        hints = get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            if hints.get(f.name) is float:  # JSON may say 0 for 0.0
                setattr(self, f.name, float(getattr(self, f.name)))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)  # type: ignore[call-overload]

    def weight_shapes(self, vocab_size: int, n_slots: int) -> dict[str, tuple[int, ...]] | None:
        """Variable path -> shape of every weight in weights.npz, or None for an architecture
        whose weights Keras checks when it loads model.keras."""
        return None


@dataclass
class RecurrentConfig(_Config):
    """The conditioned character RNNs (char-gru, lstm): character, box-index and template
    embeddings concatenated into stacked recurrent layers, then logits. Only the cell differs
    (`cell_shapes`)."""

    char_emb: int = 48  # character embedding width
    template_emb: int = 32  # template conditioning width (slot 0 = any template)
    box_emb: int = 8  # box-index conditioning width
    max_boxes: int = 8  # box indices >= this share the last embedding
    hidden: int = 384  # recurrent width of every layer
    layers: int = 2  # stacked recurrent layers
    dropout: float = 0.0  # between recurrent layers (training only)
    template_dropout: float = 0.1  # share of training captions shown as "any template"

    def cell_shapes(self, layer: int, width: int) -> dict[str, tuple[int, ...]]:
        """The variables of recurrent layer `layer`, whose input is `width` wide."""
        raise NotImplementedError

    def weight_shapes(self, vocab_size: int, n_slots: int) -> dict[str, tuple[int, ...]]:
        """training/models/ builds these variables; the engine steps with them."""
        shapes: dict[str, tuple[int, ...]] = {
            "char_emb/embeddings": (vocab_size, self.char_emb),
            "box_emb/embeddings": (self.max_boxes, self.box_emb),
            "template_emb/embeddings": (n_slots, self.template_emb),
            "logits/kernel": (self.hidden, vocab_size),
            "logits/bias": (vocab_size,),
        }
        for i in range(self.layers):
            width = self.char_emb + self.box_emb + self.template_emb if i == 0 else self.hidden
            shapes |= self.cell_shapes(i, width)
        return shapes


@dataclass
class CharGRUConfig(RecurrentConfig):
    """char-gru (the default): GRU layers (Keras' reset_after form, two biases per layer)."""

    def cell_shapes(self, layer: int, width: int) -> dict[str, tuple[int, ...]]:
        H, G = self.hidden, 3 * self.hidden  # gates z, r, n
        return {
            f"gru_{layer}/gru_cell/kernel": (width, G),
            f"gru_{layer}/gru_cell/recurrent_kernel": (H, G),
            f"gru_{layer}/gru_cell/bias": (2, G),  # input bias, recurrent bias
        }


@dataclass
class LSTMConfig(RecurrentConfig):
    """lstm: the char-LSTM of Deep Learning with Python, conditioned like char-gru. The same
    fields and defaults (hidden 384, 2 layers): ~1.3x char-gru's recurrent weights."""

    def cell_shapes(self, layer: int, width: int) -> dict[str, tuple[int, ...]]:
        H, G = self.hidden, 4 * self.hidden  # gates i, f, c, o
        return {
            f"lstm_{layer}/lstm_cell/kernel": (width, G),
            f"lstm_{layer}/lstm_cell/recurrent_kernel": (H, G),
            f"lstm_{layer}/lstm_cell/bias": (G,),
        }


@dataclass
class SeedCNNConfig(_Config):
    seq_len: int = 128  # input row length (left-padded)
    embedding: int = 16  # character embedding width
    filters: int = 1024  # Conv1D filters in each of the five conv layers
    kernel: int = 5  # Conv1D kernel width
    dense: int = 1024  # width of the dense layer before the softmax
    dropout: float = 0.25  # after every conv block and the dense layer
    template_dropout: float = 0.1  # share of rows shown with the generic id 000000000000


@dataclass
class TransformerConfig(_Config):
    d_model: int = 256  # width of every position's vector (embeddings are summed into it)
    layers: int = 4  # pre-norm decoder blocks
    heads: int = 4  # attention heads per block (d_model must divide by it)
    ff: int = 1024  # width of each block's feed-forward layer
    max_len: int = 96  # learned positions = longest text it writes (captions <= 82 + room)
    max_boxes: int = 8  # box indices >= this share the last embedding
    dropout: float = 0.0  # on the embeddings and every residual branch (training only)
    template_dropout: float = 0.1  # share of training captions shown as "any template"
    warmup_steps: int = field(default=100, metadata={"min": 0})  # linear LR warmup (batches)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.d_model % self.heads:
            raise ConfigError("heads", f"must divide d_model {self.d_model}", self.heads)

    def weight_shapes(self, vocab_size: int, n_slots: int) -> dict[str, tuple[int, ...]]:
        """training/models/transformer.py builds these variables; the engine steps with them."""
        D, F = self.d_model, self.ff
        shapes: dict[str, tuple[int, ...]] = {
            "char_emb/embeddings": (vocab_size, D),
            "box_emb/embeddings": (self.max_boxes, D),
            "template_emb/embeddings": (n_slots, D),
            "pos_emb/embeddings": (self.max_len, D),
            "final_norm/gamma": (D,),
            "final_norm/beta": (D,),
            "logits/kernel": (D, vocab_size),
            "logits/bias": (vocab_size,),
        }
        for i in range(self.layers):
            b = f"block_{i}"
            shapes |= {
                f"{b}/attn_norm/gamma": (D,),
                f"{b}/attn_norm/beta": (D,),
                f"{b}/qkv/kernel": (D, 3 * D),
                f"{b}/qkv/bias": (3 * D,),
                f"{b}/attn_out/kernel": (D, D),
                f"{b}/attn_out/bias": (D,),
                f"{b}/ff_norm/gamma": (D,),
                f"{b}/ff_norm/beta": (D,),
                f"{b}/ff_in/kernel": (D, F),
                f"{b}/ff_in/bias": (F,),
                f"{b}/ff_out/kernel": (F, D),
                f"{b}/ff_out/bias": (D,),
            }
        return shapes


ModelConfig = CharGRUConfig | SeedCNNConfig | LSTMConfig | TransformerConfig
# The architecture registry's one list of names. Each layer maps a name to its own part with an
# exhaustive `match` (mypy checks every name has a case): the config here, the served step in
# engine/decoding/archs.py, the trainable architecture in training/models/__init__.py.
ArchName = Literal["char-gru", "seed-cnn", "lstm", "transformer"]
ARCH_NAMES: tuple[ArchName, ...] = get_args(ArchName)
DEFAULT_ARCH: ArchName = "char-gru"


def config_class(arch: ArchName) -> type[ModelConfig]:
    match arch:
        case "char-gru":
            return CharGRUConfig
        case "seed-cnn":
            return SeedCNNConfig
        case "lstm":
            return LSTMConfig
        case "transformer":
            return TransformerConfig
    assert_never(arch)


CONFIGS: dict[str, type[ModelConfig]] = {a: config_class(a) for a in ARCH_NAMES}


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
        raise ArtifactError(f"{source}: {e}") from e
