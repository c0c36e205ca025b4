"""The wall-clock budget callback on a fake clock (no training, no timing); the transformer's
learning-rate warmup on a one-layer model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from training.callbacks import LinearWarmup, TimeBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def budget(minutes: float | None) -> tuple[TimeBudget, Clock, SimpleNamespace]:
    clock = Clock()
    b = TimeBudget(minutes, started=0.0, clock=clock)
    model = SimpleNamespace(stop_training=False)
    b.set_model(model)
    return b, clock, model


def test_stops_at_the_first_batch_past_the_budget() -> None:
    b, clock, model = budget(1.0)
    for t in (10.0, 59.0):
        clock.now = t
        b.on_train_batch_end(0)
        assert not model.stop_training and not b.hit
    clock.now = 61.0
    b.on_train_batch_end(2)
    assert model.stop_training and b.hit and b.batches == 3


def test_a_budget_spent_while_validating_starts_no_new_epoch() -> None:
    b, clock, model = budget(1.0)
    clock.now = 50.0
    b.on_train_batch_end(0)  # the epoch's last batch, within the budget
    clock.now = 90.0  # validation ran past it
    b.on_epoch_end(0)
    assert model.stop_training and b.hit and b.batches == 1


def test_no_budget_never_stops() -> None:
    b, clock, model = budget(None)
    clock.now = 1e9
    b.on_train_batch_end(0)
    b.on_epoch_end(0)
    assert not model.stop_training and not b.hit and not b.spent()


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
