"""The tf decoder: an architecture's decoding step as one compiled TensorFlow program over the
scheduler's batch (rows x one character), weights and state on the GPU when there is one.

Importing this module imports TensorFlow: archs.py does it only when the tf decoder is chosen.
An architecture brings a `TFCell` (its step in TensorFlow ops, e.g. char_gru_tf.py) and names
it in archs.py; everything else (device, compilation, padding, state rows) is here, once.

Why padding: XLA compiles one program per input shape. The scheduler's row count changes at
nearly every step (continuous batching), so rows are padded up to a bucket (powers of two to
32, then multiples of 32) and at most ~13 programs exist for 256 rows; the outer tf.function
takes any row count (traced once), pads, calls the compiled step and drops the padded rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

import numpy as np
import tensorflow as tf

from memebot.artifact.templates import TemplateEntry

State = tuple[Any, ...]  # tf.Tensor each, rows on axis 0
StateSpec = tuple[tuple[tuple[int, ...], Any], ...]  # (shape without the row axis, tf dtype)


class TFCell(Protocol):
    """One architecture's step in TensorFlow ops (not a tf.function: TFStepper compiles it).
    Built inside the decoding device's scope, so the variables it makes live there."""

    # Per-row state tensors: (shape without the row axis, dtype); rows are axis 0 of each.
    state_spec: StateSpec
    n_chars: int  # valid character ids: 0 .. n_chars-1 (box ids are clamped by the cell)
    n_conds: int  # valid conditioning ids: 0 .. n_conds-1

    def condition(self, entry: TemplateEntry | None) -> int: ...
    def step(
        self, state: State, chars: tf.Tensor, boxes: tf.Tensor, conds: tf.Tensor
    ) -> tuple[tf.Tensor, State]:
        """int32 ids [B] -> (logits [B,V] float32, new state). Rows must not mix: a padded
        row may hold anything without changing the others."""
        ...


def bucket(rows: int) -> int:
    """Rows a step is padded to: a power of two up to 32, then a multiple of 32."""
    if rows <= 32:
        return 1 << max(rows - 1, 0).bit_length()
    return -(-rows // 32) * 32


@cache
def configure() -> None:
    """Process-wide TensorFlow settings for decoding, applied once before the first op.
    TensorFloat-32 off: Ampere+ GPUs would otherwise multiply float32 with a 10-bit mantissa
    (logits off by ~1e-3, so captions could differ from the NumPy step's); at serving batch
    sizes the step is bound by launch latency, not by matmul throughput, so it costs nothing.
    Memory growth: TensorFlow would otherwise reserve nearly all GPU memory for a model that
    needs a few MB."""
    tf.config.experimental.enable_tensor_float_32_execution(False)
    for gpu in tf.config.list_physical_devices("GPU"):
        # RuntimeError: TensorFlow already initialised here (e.g. a seed-cnn model loaded)
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)


def default_device() -> str:
    """The first GPU TensorFlow lists, else the CPU."""
    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"


class TFStepper:
    """The Stepper interface (model.py) over a TFCell: state stays on the device as a tuple of
    tensors; only the ids go in and the logits [B,V] come out each step."""

    returns_logp = False  # logits; LoadedModel.step log-softmaxes them as for the NumPy step

    def __init__(self, build: Callable[[], TFCell], *, device: str | None = None, jit: bool = True):
        """`build`: makes the cell (called in the device scope). `jit`: compile the step with
        XLA (fused gates: fewer kernel launches per step on a GPU); off, a plain graph."""
        configure()
        self.device = tf.DeviceSpec.from_string(device or default_device()).to_string()
        kind = tf.DeviceSpec.from_string(self.device)
        self.backend = f"tf:{kind.device_type}:{kind.device_index or 0}"  # e.g. tf:GPU:0
        with tf.device(self.device):
            self.cell = build()
        self.condition = self.cell.condition
        # The transformer's positions (LoadedModel.max_chars cuts max_len to them); None else.
        self.max_chars: int | None = getattr(self.cell, "max_chars", None)
        cell, dev = self.cell, self.device
        spec = tuple(tf.TensorSpec([None, *shape], dtype) for shape, dtype in cell.state_spec)
        ids = tf.TensorSpec([None], tf.int32)
        inner = tf.function(cell.step, jit_compile=jit)

        @tf.function(input_signature=(spec, ids, ids, ids))
        def step(state: State, chars: Any, boxes: Any, conds: Any) -> tuple[Any, State]:
            with tf.device(dev):
                rows = tf.shape(state[0])[0]
                pad = tf.shape(chars)[0] - rows
                padded = tuple(tf.pad(s, [[0, pad]] + [[0, 0]] * (len(s.shape) - 1)) for s in state)
                logits, new = inner(padded, chars, boxes, conds)
                return logits[:rows], tuple(s[:rows] for s in new)

        self._step = step

    def initial_state(self, batch: int) -> State:
        with tf.device(self.device):
            return tuple(tf.zeros([batch, *shape], dtype) for shape, dtype in self.cell.state_spec)

    def take_state(self, state: State, idx: np.ndarray) -> State:
        rows = int(state[0].shape[0])
        if len(idx) == rows and np.array_equal(idx, np.arange(rows)):
            return state  # most steps keep every row in order: no device op
        with tf.device(self.device):
            at = tf.constant(np.asarray(idx, dtype=np.int32))
            return tuple(tf.gather(s, at) for s in state)

    def concat_states(self, states: list[State]) -> State:
        parts = [s for s in states if int(s[0].shape[0])]
        if len(parts) <= 1:
            return parts[0] if parts else states[0]
        with tf.device(self.device):
            return tuple(tf.concat(list(group), axis=0) for group in zip(*parts, strict=True))

    def step(
        self, state: State, chars: np.ndarray, boxes: np.ndarray, conds: np.ndarray
    ) -> tuple[np.ndarray, State]:
        """One character for each row: ids [B] -> (logits [B,V] float32 on the host, new state
        on the device)."""
        rows = len(chars)
        if int(state[0].shape[0]) != rows or len(boxes) != rows or len(conds) != rows:
            raise ValueError(f"state of {int(state[0].shape[0])} rows, ids for {rows}")
        ids = np.zeros((3, bucket(rows)), dtype=np.int32)  # padded rows feed id 0 everywhere
        ids[0, :rows], ids[1, :rows], ids[2, :rows] = chars, boxes, conds
        # GPU gathers return zeros for an id outside a table instead of failing: check here.
        if rows and (
            ids[0].max() >= self.cell.n_chars or ids[2].max() >= self.cell.n_conds or ids.min() < 0
        ):
            raise ValueError("a character, box or template id is outside the model's tables")
        logits, new = self._step(state, ids[0], ids[1], ids[2])
        return logits.numpy(), new

    def warm(self, max_rows: int) -> None:
        """Compile the step for every bucket up to `max_rows` now (one XLA compile each),
        so no request pays a compile when the batch first grows to a new bucket."""
        sizes = sorted({bucket(r) for r in range(1, max(max_rows, 1) + 1)})
        for rows in sizes:
            zeros = np.zeros(rows, dtype=np.int64)
            self.step(self.initial_state(rows), zeros, zeros, zeros)
