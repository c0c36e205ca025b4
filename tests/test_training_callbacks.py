"""The wall-clock budget callback on a fake clock (no training, no timing) and the disk-space
guard."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from training.callbacks import (
    DiskFull,
    DiskSpaceGuard,
    TimeBudget,
    checkpoint_bytes,
)


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


def test_disk_space_guard_stops_before_the_checkpoints_would_not_fit(tmp_path: Path) -> None:
    room = [10_000_000]
    guard = DiskSpaceGuard(tmp_path, checkpoint_bytes(100_000), free=lambda _p: room[0])
    assert checkpoint_bytes(100_000) == 100_000 * 4 * 6 + 1_000_000
    guard.on_train_begin()
    guard.on_epoch_end(0)
    room[0] = 3_000_000  # something else filled the disk during the epoch
    with pytest.raises(DiskFull, match=r"no space left on device for .*: 3\.0 MB free.*3\.4 MB"):
        guard.on_epoch_end(1)
    # The real free space of this temp dir is read when no function is given.
    DiskSpaceGuard(tmp_path, 1).on_train_begin()
    with pytest.raises(DiskFull):
        DiskSpaceGuard(tmp_path, 10**18).on_train_begin()
