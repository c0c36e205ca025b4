"""char-gru training batches built by TensorFlow ops alone (no Python generator).

Why not `tf.data.Dataset.from_generator`: with a Python generator feeding `fit`, the
mixed_bfloat16 training step ran ~1.4x slower than the same step fed from tensors
(470-520 vs 340-360 ms per 256x48 batch on an AVX512-BF16 CPU; float32 was unaffected),
which erased bfloat16's gain. Here the whole epoch (shuffle, length bucketing, template
dropout, teacher-forcing arrays) is graph ops over the encoded captions held as one flat
tensor, and each pass over the dataset draws fresh randomness from `Dataset.random`.

The arrays are the same as `batches.gru_arrays` gives for the same captions (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memebot.artifact.templates import GENERIC_SLOT
from memebot.artifact.vocab import BOS, PAD

CHUNK_BATCHES = 64  # captions are sorted by length within chunks of this many batches
# Batches are padded to a multiple of this. 1: the traced step has a dynamic length dimension,
# so distinct lengths cost no retracing, and rounding up to 8 spent ~7% on padding.
PAD_TO = 1
# Targets of negative (downvoted) rows are sent as id + NEGATIVE_OFFSET: the char-gru loss
# (training/models/char_gru.py, CaptionLoss) applies unlikelihood to them instead of
# cross-entropy. Far above any vocabulary size, so no real id is mistaken for one.
NEGATIVE_OFFSET = 1 << 16


def gru_dataset(
    texts: Sequence[np.ndarray],
    slots: np.ndarray,
    end_id: int,
    *,
    batch_size: int,
    template_dropout: float = 0.0,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
    negative: np.ndarray | None = None,
    negative_weight: float = 1.0,
) -> Any:  # -> tf.data.Dataset of (inputs, targets [B,T], weights [B,T])
    """One element per batch; each pass (or each repetition, with `repeat`) is one epoch with
    its own shuffle and template dropout. `shuffle=False`: captions in order, sorted by length
    within chunks, no dropout (validation). `negative` [N] bool: rows whose targets are sent
    as id + NEGATIVE_OFFSET with weight `negative_weight` (unlikelihood)."""
    import tensorflow as tf

    n = len(texts)
    lengths_np = np.array([len(t) for t in texts], dtype=np.int64)
    flat = tf.constant(np.concatenate(list(texts)).astype(np.int32))  # [chars]
    starts = tf.constant(np.concatenate([[0], np.cumsum(lengths_np)[:-1]]))  # [N]
    lengths = tf.constant(lengths_np)  # [N]
    base_slots = tf.constant(np.asarray(slots, dtype=np.int32))  # [N]
    neg_rows = tf.constant(
        np.zeros(n, dtype=bool) if negative is None else np.asarray(negative, dtype=bool)
    )  # [N]
    n_batches = -(-n // batch_size)
    chunk = batch_size * CHUNK_BATCHES

    def epoch(key: Any) -> Any:
        # key: [2] int64, fresh each pass -> stateless (reproducible) draws for this epoch.
        key = tf.cast(key, tf.int64)
        if shuffle:
            perm = tf.argsort(tf.random.stateless_uniform([n], seed=key))
            drop = tf.random.stateless_uniform([n], seed=key + 1) < template_dropout
            epoch_slots = tf.where(drop, GENERIC_SLOT, base_slots)
            batch_order = tf.argsort(tf.random.stateless_uniform([n_batches], seed=key + 2))
        else:
            perm = tf.range(n, dtype=tf.int32)
            epoch_slots = base_slots
            batch_order = tf.range(n_batches, dtype=tf.int32)
        # Stable sort by (chunk of the shuffled order, length): similar lengths per batch.
        sort_key = tf.range(n, dtype=tf.int64) // chunk * 10_000 + tf.gather(lengths, perm)
        order = tf.gather(perm, tf.argsort(sort_key, stable=True))  # [N]

        def batch(b: Any) -> Any:
            rows = order[b * batch_size : (b + 1) * batch_size]  # [B]
            lens, first = tf.gather(lengths, rows), tf.gather(starts, rows)
            pos = tf.ragged.range(first, first + lens)
            text = tf.gather(flat, pos)  # ragged [B, (len)]
            t = (tf.reduce_max(lens) + PAD_TO - 1) // PAD_TO * PAD_TO
            y = text.to_tensor(default_value=PAD, shape=tf.stack([tf.size(rows, tf.int64), t]))
            live = y != PAD  # [B,T]
            # chars: BOS + text[:-1]; boxes: end-of-box markers before each target position.
            prev = tf.concat([tf.fill([tf.shape(y)[0], 1], BOS), y[:, :-1]], axis=1)
            chars = tf.where(live, prev, PAD)
            marks = tf.cast(y == end_id, tf.int32)
            boxes = tf.where(live, tf.cumsum(marks, axis=1, exclusive=True), 0)
            inputs = {"chars": chars, "boxes": boxes, "template": tf.gather(epoch_slots, rows)}
            neg = tf.gather(neg_rows, rows)[:, None] & live  # [B,T]
            w = tf.where(neg, negative_weight, 1.0) * tf.cast(live, tf.float32)
            return inputs, tf.where(neg, y + NEGATIVE_OFFSET, y), w

        return tf.data.Dataset.from_tensor_slices(batch_order).map(batch)

    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).take(1)
    ds = keys.flat_map(epoch)
    if repeat:
        return ds.repeat().prefetch(2)
    # A known length lets Keras end the epoch without an "input ran out of data" warning.
    return ds.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2)
