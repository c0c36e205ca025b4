"""`seed-cnn`: the imgflip article's conv net, reproduced as published (the baseline).

One training example per character: the input row is the 12-digit zero-padded Imgflip
template id, two spaces, the box index, two spaces, then the caption so far, left-padded
with 0 to 128 ids; the label is the next character.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from training.vocab import PAD, Vocab


@dataclass
class SeedCNNConfig:
    seq_len: int = 128  # input row length (left-padded)
    embedding: int = 16  # character embedding width
    filters: int = 1024  # Conv1D filters in each of the five conv layers
    kernel: int = 5  # Conv1D kernel width
    dense: int = 1024  # width of the dense layer before the softmax
    dropout: float = 0.25  # after every conv block and the dense layer
    template_dropout: float = 0.1  # share of rows shown with the generic id 000000000000

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def row_prefix(imgflip_id: int | None, box_index: int) -> str:
    """`000000061533  0  `: the article's conditioning prefix (None -> the generic id 0)."""
    return f"{(imgflip_id or 0):012d}  {box_index}  "


def encode_rows(vocab: Vocab, prefixes: list[str], seq_len: int) -> np.ndarray:
    """Left-pad each `prefix + text so far` to `seq_len` ids, keeping the rightmost chars."""
    out = np.full((len(prefixes), seq_len), PAD, dtype=np.int32)
    for i, s in enumerate(prefixes):
        ids = vocab.encode(s)[-seq_len:]
        out[i, seq_len - len(ids) :] = ids
    return out


def training_rows(imgflip_id: int | None, text: str) -> list[tuple[str, str]]:
    """Every (input string, next char) pair of one caption `box|box|`, as in the article."""
    rows = []
    box = 0
    for i, ch in enumerate(text):
        rows.append((row_prefix(imgflip_id, box) + text[:i], ch))
        if ch == "|":
            box += 1
    return rows


def build(config: SeedCNNConfig, vocab_size: int):  # -> keras.Model
    import keras
    from keras import layers

    model = keras.Sequential(name="seed_cnn")
    model.add(keras.Input((config.seq_len,), dtype="int32", name="row"))
    model.add(layers.Embedding(vocab_size, config.embedding))
    for i in range(5):
        model.add(layers.Conv1D(config.filters, config.kernel, activation="relu", padding="same"))
        model.add(layers.BatchNormalization())
        if i < 4:
            model.add(layers.MaxPooling1D(2))
        model.add(layers.Dropout(config.dropout))
    model.add(layers.GlobalMaxPooling1D())
    model.add(layers.Dense(config.dense, activation="relu"))
    model.add(layers.BatchNormalization())
    model.add(layers.Dropout(config.dropout))
    model.add(layers.Dense(vocab_size, activation="softmax"))
    return model
