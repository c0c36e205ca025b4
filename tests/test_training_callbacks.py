"""Training callbacks with a model of their own: the transformer's learning-rate warmup."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_linear_warmup_rises_then_leaves_the_rate_alone() -> None:
    import keras

    from training.callbacks import LinearWarmup

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
