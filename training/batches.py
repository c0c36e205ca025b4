"""Training batches as Keras PyDatasets, rebuilt each epoch (shuffle + template dropout).

char-gru: whole captions, bucketed by length so padding stays small (training reads them
through the graph-only pipeline of gru_dataset.py; `GRUBatches[i]` gives the same arrays
in NumPy, for evaluation).
seed-cnn: one row per character, built lazily: the 12M rows of the shared data would not fit
in memory as 128-id rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from engine.decoding.seed_cnn import encode_rows, row_prefix
from memebot.artifact.configs import SeedCNNConfig
from memebot.artifact.templates import GENERIC_SLOT, TemplateTable
from memebot.artifact.vocab import BOS, PAD, Vocab
from memebot.caption_format import BOX_END
from training.data import Caption
from training.gru_dataset import CHUNK_BATCHES, NEGATIVE_OFFSET, PAD_TO


def encode_captions(captions: Sequence[Caption], vocab: Vocab) -> list[np.ndarray]:
    return [vocab.encode(c.text) for c in captions]


def gru_arrays(
    texts: Sequence[np.ndarray],
    slots: np.ndarray,
    end_id: int,
    pad_to: int = PAD_TO,
    negative: np.ndarray | None = None,
    negative_weight: float = 1.0,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Teacher-forcing arrays for a batch: inputs, targets [B,T] and weights [B,T].
    `negative` [B] bool: those rows' targets are id + NEGATIVE_OFFSET, weighted
    `negative_weight` (the unlikelihood term)."""
    T = max(len(t) for t in texts)
    T = -(-T // pad_to) * pad_to
    B = len(texts)
    chars = np.full((B, T), PAD, dtype=np.int32)
    boxes = np.zeros((B, T), dtype=np.int32)
    y = np.full((B, T), PAD, dtype=np.int32)
    for i, t in enumerate(texts):
        n = len(t)
        y[i, :n] = t
        chars[i, 0] = BOS
        chars[i, 1:n] = t[: n - 1]
        # box index of target position j = markers in text[:j]
        boxes[i, 1:n] = np.cumsum(t[: n - 1] == end_id)
    w = (y != PAD).astype(np.float32)
    if negative is not None:
        neg = np.asarray(negative, dtype=bool)[:, None] & (w > 0)  # [B,T]
        y = np.where(neg, y + NEGATIVE_OFFSET, y).astype(np.int32)
        w = np.where(neg, np.float32(negative_weight), w).astype(np.float32)
    return {"chars": chars, "boxes": boxes, "template": slots.astype(np.int32)}, y, w


class GRUBatches:
    """Length-bucketed caption batches; `as_tf_dataset()` feeds Keras with a dynamic T."""

    def __init__(
        self,
        texts: Sequence[np.ndarray],
        slots: np.ndarray,
        end_id: int,
        *,
        batch_size: int,
        template_dropout: float = 0.0,
        shuffle: bool = True,
        seed: int = 0,
        negative: np.ndarray | None = None,
        negative_weight: float = 1.0,
    ):
        self.texts, self.slots, self.end_id = list(texts), np.asarray(slots), end_id
        # [N] bool: downvoted rows, trained by unlikelihood (gru_arrays); None: no such rows.
        self.negative = None if negative is None else np.asarray(negative, dtype=bool)
        self.negative_weight = negative_weight
        self.batch_size, self.template_dropout, self.shuffle = batch_size, template_dropout, shuffle
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        n = len(self.texts)
        lengths = np.array([len(t) for t in self.texts])
        idx = self.rng.permutation(n) if self.shuffle else np.arange(n)
        # Sort within large chunks: batches of similar length, still well mixed.
        chunk = self.batch_size * CHUNK_BATCHES
        parts = [idx[i : i + chunk] for i in range(0, n, chunk)]
        idx = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in parts])
        batches = [idx[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.shuffle:
            self.rng.shuffle(batches)
        self.batches = batches
        drop = self.rng.random(n) < self.template_dropout
        self.epoch_slots = np.where(drop, GENERIC_SLOT, self.slots)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Any:
        b = self.batches[i]
        neg = None if self.negative is None else self.negative[b]
        return gru_arrays(
            [self.texts[j] for j in b],
            self.epoch_slots[b],
            self.end_id,
            negative=neg,
            negative_weight=self.negative_weight,
        )

    def as_tf_dataset(self, repeat: bool = False) -> Any:
        """The same batching as a graph-only tf.data pipeline (training/gru_dataset.py); each
        pass reshuffles and redraws template dropout. (A Keras PyDataset would pin T to the
        first batch's length, and a Python generator slows the bfloat16 step.)"""
        from training.gru_dataset import gru_dataset

        return gru_dataset(
            self.texts,
            self.slots,
            self.end_id,
            batch_size=self.batch_size,
            template_dropout=self.template_dropout,
            shuffle=self.shuffle,
            seed=int(self.rng.integers(2**31)),
            repeat=repeat,
            negative=self.negative,
            negative_weight=self.negative_weight,
        )


def training_row(imgflip_id: int | None, text: str, pos: int) -> tuple[str, str]:
    """seed-cnn's (input string, next char) pair of caption `box|box|` at position `pos`, as
    in the article; SeedBatches builds every training and validation row with it."""
    return row_prefix(imgflip_id, text[:pos].count(BOX_END)) + text[:pos], text[pos]


class SeedBatches(keras.utils.PyDataset):
    def __init__(
        self,
        captions: Sequence[Caption],
        templates: TemplateTable,
        vocab: Vocab,
        config: SeedCNNConfig,
        *,
        batch_size: int,
        shuffle: bool = True,
        template_dropout: float = 0.0,
        seed: int = 0,
    ):
        super().__init__()
        self.texts = [c.text for c in captions]
        ids = []
        for c in captions:
            e = templates.get(c.template)
            ids.append(int(e.imgflip_id or 0) if e and e.slot != GENERIC_SLOT else 0)
        self.ids = np.array(ids, dtype=np.int64)
        self.vocab, self.config, self.batch_size = vocab, config, batch_size
        self.shuffle, self.template_dropout = shuffle, template_dropout
        self.rng = np.random.default_rng(seed)
        lens = np.array([len(t) for t in self.texts])
        # (caption, position) for every target character
        self.rows = np.stack(
            [np.repeat(np.arange(len(lens)), lens), np.concatenate([np.arange(n) for n in lens])], 1
        )
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        self.order = (
            self.rng.permutation(len(self.rows)) if self.shuffle else np.arange(len(self.rows))
        )
        self.epoch_ids = np.where(
            self.rng.random(len(self.ids)) < self.template_dropout, 0, self.ids
        )

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __getitem__(self, i: int) -> Any:
        sel = self.rows[self.order[i * self.batch_size : (i + 1) * self.batch_size]]
        prefixes, labels = [], []
        for ci, pos in sel:
            row, label = training_row(int(self.epoch_ids[ci]), self.texts[ci], int(pos))
            prefixes.append(row)
            labels.append(self.vocab.id_of(label))
        x = encode_rows(self.vocab, prefixes, self.config.seq_len)
        return x, np.array(labels, dtype=np.int32)
