"""Learning-rate schedules as Keras callbacks (set before every batch): the transformer's linear
warmup and `--lr-schedule cosine`. Apart from training/callbacks.py, which samples captions
through the architectures, so the architectures can use them without an import cycle."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras


class LinearWarmup(keras.callbacks.Callback):
    """The learning rate rises linearly from lr/steps to `lr` over the first `steps` optimizer
    steps, then is left alone (ReduceLROnPlateau halves it from there). Counted by the
    optimizer's own step counter, so --resume does not warm up again; a fine-tune (a fresh
    optimizer) does. A plateau cut inside the warmup is overwritten by it."""

    def __init__(self, lr: float, steps: int):
        super().__init__()
        self.lr, self.steps = lr, steps
        self.step: int | None = None  # read from the optimizer at the first batch

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if self.step is None:
            self.step = int(self.model.optimizer.iterations.numpy())
        if self.step < self.steps:  # the last warmup step sets `lr` itself
            self.model.optimizer.learning_rate = self.lr * (self.step + 1) / self.steps
        self.step += 1


class CosineDecay(keras.callbacks.Callback):
    """`--lr-schedule cosine`: the learning rate falls from `lr` to `lr * floor` along half a
    cosine over the run's length, set before every batch. The length is the wall-clock budget
    (`minutes` from `started`) and/or `total_steps` optimizer steps; progress is the larger of
    the two fractions, so a run ended by --max-minutes ends at the low rate. Why: a constant
    rate halved on plateaus leaves a budget-ended run well above the loss its last epochs could
    reach (models/default's val fell 0.02 on its one halving). Steps are counted from the
    optimizer's own counter, so --resume continues the schedule by steps (the budget restarts
    with the process, as TimeBudget's does)."""

    def __init__(
        self,
        lr: float,
        *,
        minutes: float | None,
        total_steps: int | None,
        started: float | None = None,
        floor: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        if minutes is None and not total_steps:
            raise ValueError("CosineDecay needs a budget in minutes or a total step count")
        self.lr, self.minutes, self.total_steps, self.floor = lr, minutes, total_steps, floor
        self.clock = clock
        self.started = clock() if started is None else started
        self.step: int | None = None  # read from the optimizer at the first batch

    def progress(self) -> float:
        """How far through the run, in [0, 1]."""
        done = 0.0
        if self.minutes is not None:
            done = (self.clock() - self.started) / (self.minutes * 60)
        if self.total_steps:
            done = max(done, (self.step or 0) / self.total_steps)
        return min(max(done, 0.0), 1.0)

    def rate(self) -> float:
        cos = 0.5 * (1 + math.cos(math.pi * self.progress()))
        return self.lr * (self.floor + (1 - self.floor) * cos)

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if self.step is None:
            self.step = int(self.model.optimizer.iterations.numpy())
        self.model.optimizer.learning_rate = self.rate()
        self.step += 1
