"""Character vocabulary: ids ordered by training-set frequency, saved with every model; and the
caption format every model writes (`box|box|`, at most MAX_CHARS characters)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memebot.artifact.jsonio import read_json, write_json
from memebot.caption_format import BOX_END
from memebot.errors import ArtifactError

PAD, BOS, UNK = 0, 1, 2
N_SPECIAL = 3
# The seed-cnn prefix (`000000061533  0  `) must always be encodable.
_ALWAYS = "0123456789 " + BOX_END


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # id = N_SPECIAL + position; most frequent first

    @classmethod
    def build(cls, texts: Iterable[str]) -> Vocab:
        counts = Counter[str]()
        for t in texts:
            counts.update(t)
        for ch in _ALWAYS:
            counts.setdefault(ch, 0)
        ordered = sorted(counts, key=lambda ch: (-counts[ch], ch))
        return cls(tuple(ordered))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {c: i + N_SPECIAL for i, c in enumerate(self.chars)})

    @property
    def size(self) -> int:
        return len(self.chars) + N_SPECIAL

    @property
    def box_end_id(self) -> int:
        return self.id_of(BOX_END)

    @property
    def space_id(self) -> int:
        """The space's id, or -1 when the vocabulary has none (tiny test corpora)."""
        return self.id_of(" ") if " " in self._index else -1  # type: ignore[attr-defined]

    def id_of(self, ch: str) -> int:
        return int(self._index.get(ch, UNK))  # type: ignore[attr-defined]

    def encode(self, text: str) -> np.ndarray:
        return np.fromiter((self.id_of(c) for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i >= N_SPECIAL:
                out.append(self.chars[i - N_SPECIAL])
            elif i == UNK:
                out.append("?")
        return "".join(out)

    def to_json(self) -> dict[str, object]:
        return {"specials": ["<pad>", "<bos>", "<unk>"], "chars": list(self.chars)}

    @classmethod
    def from_json(cls, obj: object, source: Path | str = "vocab.json") -> Vocab:
        if not isinstance(obj, dict) or not isinstance(obj.get("chars"), list):
            raise ArtifactError(f"{source}: not a memebot vocabulary")
        chars = obj["chars"]
        if not all(isinstance(c, str) and len(c) == 1 for c in chars) or len(set(chars)) != len(
            chars
        ):
            raise ArtifactError(f"{source}: vocabulary entries must be distinct single characters")
        # Decoders close boxes with BOX_END and seed-cnn rows need digits and spaces.
        missing = [c for c in _ALWAYS if c not in chars]
        if missing:
            raise ArtifactError(f"{source}: vocabulary lacks the special characters {missing!r}")
        return cls(tuple(chars))

    def save(self, path: Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Vocab:
        return cls.from_json(read_json(path, "vocabulary"), path)
