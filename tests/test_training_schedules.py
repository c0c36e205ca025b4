"""The learning-rate schedules (training/schedules.py): the cosine on a fake clock (no training,
no timing); the transformer's warmup on a one-layer model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from training.schedules import CosineDecay, LinearWarmup


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.slow
def test_linear_warmup_rises_then_leaves_the_rate_alone() -> None:
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    x, y = np.ones((4, 2), dtype="float32"), np.ones((4, 1), dtype="float32")
    warmup = LinearWarmup(0.1, 4)
    seen: list[float] = []
    probe = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: seen.append(float(model.optimizer.learning_rate))
    )
    model.fit(x, y, batch_size=1, epochs=1, callbacks=[warmup, probe], verbose=0)
    np.testing.assert_allclose(seen, [0.025, 0.05, 0.075, 0.1], rtol=1e-6)
    model.optimizer.learning_rate = 0.03  # e.g. ReduceLROnPlateau, after the warmup
    # A new fit (as after --resume) counts from the optimizer's steps: no second warmup.
    model.fit(x, y, batch_size=1, epochs=1, callbacks=[LinearWarmup(0.1, 4), probe], verbose=0)
    np.testing.assert_allclose(seen[4:], [0.03] * 4, rtol=1e-6)


def cosine(minutes: float | None, total_steps: int | None, iterations: int = 0):
    clock = Clock()
    c = CosineDecay(0.01, minutes=minutes, total_steps=total_steps, started=0.0, clock=clock)
    optimizer = SimpleNamespace(
        learning_rate=0.01, iterations=SimpleNamespace(numpy=lambda: iterations)
    )
    c.set_model(SimpleNamespace(optimizer=optimizer))
    return c, clock, optimizer


def test_cosine_follows_the_budget_from_the_full_rate_to_the_floor() -> None:
    c, clock, opt = cosine(minutes=10.0, total_steps=None)
    seen = []
    for t in (0.0, 150.0, 300.0, 450.0, 600.0, 900.0):  # seconds; past the budget stays low
        clock.now = t
        c.on_train_batch_begin(0)
        seen.append(opt.learning_rate)
    floor = 0.01 * 0.05
    half = floor + (0.01 - floor) * 0.5
    np.testing.assert_allclose(seen[0], 0.01)
    np.testing.assert_allclose(seen[2], half)
    np.testing.assert_allclose(seen[4:], [floor, floor])
    assert seen[0] > seen[1] > seen[2] > seen[3] > seen[4]


@pytest.mark.parametrize(
    ("elapsed", "iterations", "total", "progress"),
    [
        (0.0, 0, 100, 0.0),
        (0.0, 50, 100, 0.5),  # --resume: the optimizer's steps count, not this process's
        (300.0, 10, 100, 0.5),  # the budget is further along than the steps
        (60.0, 90, 100, 0.9),  # the steps are further along than the budget
        (0.0, 500, 100, 1.0),  # clamped
    ],
)
def test_cosine_progress_is_the_larger_of_time_and_steps(
    elapsed: float, iterations: int, total: int, progress: float
) -> None:
    c, clock, _ = cosine(minutes=10.0, total_steps=total, iterations=iterations)
    clock.now = elapsed
    c.on_train_batch_begin(0)  # reads the optimizer's step counter, then counts one more
    assert c.step == iterations + 1
    c.step = iterations
    assert c.progress() == pytest.approx(progress)


def test_cosine_needs_a_length() -> None:
    with pytest.raises(ValueError, match="budget"):
        CosineDecay(0.01, minutes=None, total_steps=None)
