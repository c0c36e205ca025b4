"""Training callbacks: wall-clock budget, divergence guard, disk-space guard, samples each epoch,
history JSON + curves PNG (the learning-rate schedules are training/schedules.py's)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from engine.decoding.batch import sample_captions
from memebot.artifact.jsonio import write_json
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from training.models.base import Architecture


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `minutes` of wall clock have passed since `started`.

    Checked after every training batch (Keras ends the epoch there), so the run stops within
    one batch of the budget whatever the epoch length or architecture; then that epoch's
    validation pass runs (the best checkpoint needs it). Also checked after every epoch,
    validation included: a budget spent while validating starts no new epoch, which would
    train one more batch and then validate on the whole val split again."""

    def __init__(
        self,
        minutes: float | None,
        started: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.minutes, self.clock = minutes, clock
        self.started = clock() if started is None else started
        self.hit = False
        self.batches = 0  # training batches run under this budget

    def spent(self) -> bool:
        return self.minutes is not None and self.clock() - self.started > self.minutes * 60

    def _check(self) -> None:
        if self.spent():
            self.hit = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches += 1
        self._check()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._check()


# Nats per character no honest training run reaches: guessing uniformly over the ~80
# characters costs ln(80) = 4.4. Above this the weights have blown up (a huge --lr): --lr 1e6
# gives 1e6-1e13 on the second batch, finite, and the weights then overflow the decoder's
# float16 tables so that sampling fails.
DIVERGED_NATS = 100.0


class TrainingDiverged(Exception):
    """Raised by StopOnDivergence: the training loss became NaN, infinite or absurdly large."""

    def __init__(self, loss: float, epoch: int, batch: int):
        super().__init__(f"{loss:.4g} nats/char at epoch {epoch + 1}, batch {batch + 1}")
        self.loss, self.epoch, self.batch = loss, epoch, batch


class StopOnDivergence(keras.callbacks.TerminateOnNaN):
    """TerminateOnNaN that also catches a finite blow-up (> DIVERGED_NATS) and raises at once.
    Raising, not stopping gracefully, keeps the broken epoch out of every other callback: no
    broken weights in the backup or the best checkpoint, no such row in history.json, no
    sampling from NaN probabilities."""

    def __init__(self) -> None:
        super().__init__(raise_error=True)
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        loss = (logs or {}).get("loss")
        # `loss` is the epoch's running mean: once a batch is NaN, it stays NaN.
        if loss is not None and not float(loss) <= DIVERGED_NATS:  # NaN compares False
            raise TrainingDiverged(float(loss), self.epoch, batch)


class DiskFull(Exception):
    """Raised by DiskSpaceGuard: too little room left for the next checkpoint."""

    def __init__(self, where: Path, free: int, need: int):
        super().__init__(
            f"no space left on device for {where}: {free / 1e6:.1f} MB free, the checkpoints "
            f"need about {need / 1e6:.1f} MB"
        )
        self.where, self.free, self.need = where, free, need


def checkpoint_bytes(params: int) -> int:
    """Disk a run needs at once, generously: the best weights, the backup (weights and Adam's
    two moments) and the exported artifact, float32 each, plus 1 MB for the JSON files."""
    return params * 4 * 6 + 1_000_000


class DiskSpaceGuard(keras.callbacks.Callback):
    """Checks the room left at `where` before training and before each epoch's checkpoints
    (it comes before them in the callback list) and raises DiskFull when it is short. Why:
    h5py does not fail cleanly on a full disk (ENOSPC in its write-back, then a segfault at
    exit), so a run that would fill the disk stops first, with an error naming the place."""

    def __init__(self, where: Path, need: int, free: Callable[[Path], int] | None = None):
        super().__init__()
        self.where, self.need = where, need
        self.free = free or (lambda p: shutil.disk_usage(p).free)

    def check(self) -> None:
        free = self.free(self.where)
        if free < self.need:
            raise DiskFull(self.where, free, self.need)

    def on_train_begin(self, logs: Any = None) -> None:
        self.check()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.check()


class PrintSamples(keras.callbacks.Callback):
    """Prints a few threshold-decoded captions after every epoch (the shared sampler), except
    once `budget` is spent: samples are for watching a run, and seed-cnn's take a while."""

    def __init__(
        self,
        arch: Architecture,
        config: Any,
        vocab: Vocab,
        templates: TemplateTable,
        slugs: list[str],
        seed: int = 0,
        echo: Any = print,
        budget: TimeBudget | None = None,
    ):
        super().__init__()
        self.arch, self.config, self.vocab, self.templates = arch, config, vocab, templates
        self.slugs, self.seed, self.echo, self.budget = slugs, seed, echo, budget

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.budget is not None and self.budget.spent():
            return
        lm = self.arch.decoder(self.model, self.config, self.vocab, self.templates)
        for s in sample_captions(lm, self.slugs, seed=self.seed + epoch):
            self.echo(f"  sample [{s.template}] " + " / ".join(s.boxes))


class HistoryWriter(keras.callbacks.Callback):
    """history.json and curves.png (loss and accuracy per epoch), rewritten every epoch."""

    def __init__(self, workdir: Path, previous: dict[str, list[float]] | None = None):
        super().__init__()
        self.workdir = workdir
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (previous or {}).items()}
        self.on_epoch_begin(0)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch_started = self.first_batch_end = self.last_batch_end = time.monotonic()
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches += 1
        self.last_batch_end = time.monotonic()
        if self.batches == 1:
            self.first_batch_end = self.last_batch_end

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = dict(logs or {})
        logs["epoch_seconds"] = time.monotonic() - self.epoch_started
        logs["batches"] = self.batches
        # The first batch of a run carries graph tracing and pipeline warm-up: steady-state
        # throughput leaves it out (bench/train.py).
        logs["first_batch_seconds"] = self.first_batch_end - self.epoch_started
        # Time spent in training steps only (validation excluded), for throughput figures.
        logs["train_seconds"] = self.last_batch_end - self.epoch_started
        lr = self.model.optimizer.learning_rate
        logs["learning_rate"] = float(lr.numpy() if hasattr(lr, "numpy") else lr)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))
        write_json(self.workdir / "history.json", self.history)
        plot_history(self.history, self.workdir / "curves.png")


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax, label in (("loss", ax1, "loss (nats/char)"), ("acc", ax2, "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            name = prefix + ("loss" if key == "loss" else "accuracy")
            if name in history:
                xs = range(1, len(history[name]) + 1)
                ax.plot(xs, history[name], style, marker="o", label=("val" if prefix else "train"))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("memebot training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
