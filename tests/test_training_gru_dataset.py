"""The graph-only char-gru training pipeline against the NumPy batches it replaces."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from memebot.artifact.templates import GENERIC_SLOT
from training.batches import GRUBatches

END = 5


def fake_texts(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = [rng.integers(6, 40, rng.integers(3, 60)).astype(np.int32) for _ in range(n)]
    for t in texts:
        t[rng.integers(0, len(t), 2)] = END  # a box or two
        t[-1] = END
    return texts, rng.integers(1, 9, n)  # slots 1..8: GENERIC_SLOT only by dropout


def as_numpy(batch: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    x, y, w = batch
    return {k: v.numpy() for k, v in x.items()}, y.numpy(), w.numpy()


@pytest.mark.parametrize(("n", "batch_size"), [(1, 4), (37, 8), (1000, 16)])
def test_unshuffled_batches_equal_the_numpy_ones(n: int, batch_size: int) -> None:
    texts, slots = fake_texts(n)
    ref = GRUBatches(texts, slots, END, batch_size=batch_size, shuffle=False)
    got = [as_numpy(b) for b in ref.as_tf_dataset()]
    assert len(got) == len(ref)
    for i, (x, y, w) in enumerate(got):
        x2, y2, w2 = ref[i]
        assert x.keys() == x2.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], x2[k], err_msg=f"batch {i} {k}")
        np.testing.assert_array_equal(y, y2)
        np.testing.assert_array_equal(w, w2)


def caption_counts(epoch: list[Any]) -> Counter[tuple[int, ...]]:
    return Counter(tuple(r[r != 0]) for _, y, _ in epoch for r in y)


def test_each_pass_is_a_new_shuffle_of_every_caption_with_dropout() -> None:
    texts, slots = fake_texts(2000, seed=1)
    data = GRUBatches(texts, slots, END, batch_size=32, template_dropout=0.25, seed=3)
    ds = data.as_tf_dataset()
    e1 = [as_numpy(b) for b in ds]
    e2 = [as_numpy(b) for b in ds]
    every = Counter(tuple(t) for t in texts)
    assert caption_counts(e1) == caption_counts(e2) == every
    first = lambda e: [tuple(r[r != 0]) for r in e[0][1]]  # noqa: E731
    assert first(e1) != first(e2)  # reshuffled
    for epoch in (e1, e2):
        generic = np.concatenate([x["template"] for x, _, _ in epoch]) == GENERIC_SLOT
        assert 0.2 < generic.mean() < 0.3
        # Bucketed: each batch is padded only to its own longest caption.
        for _, y, w in epoch:
            assert y.shape[1] == int(w.sum(1).max())
    # Same seed, same epochs.
    again = [
        as_numpy(b)
        for b in GRUBatches(
            texts, slots, END, batch_size=32, template_dropout=0.25, seed=3
        ).as_tf_dataset()
    ]
    assert all(
        (a[1].shape == b[1].shape) and (a[1] == b[1]).all() for a, b in zip(e1, again, strict=True)
    )


def test_repeat_streams_epochs_one_after_another() -> None:
    texts, slots = fake_texts(100, seed=2)
    data = GRUBatches(texts, slots, END, batch_size=10, seed=4)
    stream = [as_numpy(b) for b in data.as_tf_dataset(repeat=True).take(2 * len(data))]
    assert caption_counts(stream[: len(data)]) == caption_counts(stream[len(data) :])
    assert caption_counts(stream[: len(data)]) == Counter(tuple(t) for t in texts)
