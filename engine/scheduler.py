"""Continuous batching: every in-flight caption advances one character per batched model call.

New requests join at the next step, finished ones leave, and a model swap starts a new cohort:
jobs admitted before the swap finish on the model they started with. The NumPy work of a step
runs in a worker thread so the event loop keeps serving HTTP meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.runtime import LoadedModel
from training.sampling import CaptionJob, CaptionRequest, Sampled, step_jobs


class QueueFull(Exception):
    """The pending queue is at its bound; the client should retry later."""


@dataclass
class _Pending:
    job: CaptionJob
    future: asyncio.Future[list[Sampled]]
    cancelled: bool = False


@dataclass
class _Cohort:
    model: LoadedModel
    items: list[_Pending] = field(default_factory=list)
    state: Any = None


class Scheduler:
    def __init__(self, model: LoadedModel, *, max_queue: int = 256, max_rows: int = 256):
        self.model = model
        self.max_queue = max_queue
        self.max_rows = max_rows  # rows (captions x beams) per model call
        self._pending: deque[_Pending] = deque()
        self._cohorts: list[_Cohort] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.steps = 0
        self.on_step: Callable[[int], None] | None = None  # called with the rows of each model call

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def in_flight(self) -> int:
        return sum(len(c.items) for c in self._cohorts)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="memebot-scheduler"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def swap_model(self, model: LoadedModel) -> None:
        """Requests admitted from now on use `model`; in-flight ones finish on the old one."""
        self.model = model

    async def submit(self, req: CaptionRequest, timeout: float | None = None) -> list[Sampled]:
        if len(self._pending) >= self.max_queue:
            raise QueueFull
        job = CaptionJob(self.model, req)
        fut: asyncio.Future[list[Sampled]] = asyncio.get_running_loop().create_future()
        item = _Pending(job, fut)
        if job.done:  # the start text already closed every box
            return job.captions()
        self._pending.append(item)
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except (TimeoutError, asyncio.CancelledError):
            item.cancelled = True  # the loop drops its rows at the next step
            raise

    def _admit(self) -> None:
        rows = sum(i.job.width for c in self._cohorts for i in c.items)
        while self._pending and rows < self.max_rows:
            item = self._pending.popleft()
            if item.cancelled:
                continue
            model = item.job.model
            cohort = next((c for c in self._cohorts if c.model is model), None)
            if cohort is None:
                cohort = _Cohort(model)
                self._cohorts.append(cohort)
            fresh = model.initial_state(item.job.width)
            cohort.state = (
                fresh if cohort.state is None else model.concat_states([cohort.state, fresh])
            )
            cohort.items.append(item)
            rows += item.job.width

    async def _run(self) -> None:
        while True:
            if not self._pending and not self._cohorts:
                self._wake.clear()
                await self._wake.wait()
            self._admit()
            for cohort in list(self._cohorts):
                finished, rows = await asyncio.to_thread(_step, cohort)
                self.steps += 1
                if self.on_step and rows:
                    self.on_step(rows)
                for item in finished:
                    if not item.future.done():
                        item.future.set_result(item.job.captions())
                if not cohort.items:
                    self._cohorts.remove(cohort)


def _step(cohort: _Cohort) -> tuple[list[_Pending], int]:
    """One batched model call for a cohort; returns the items that finished and the rows."""
    model = cohort.model
    # Drop cancelled (timed-out) requests before spending compute on them.
    if any(i.cancelled for i in cohort.items):
        keep_idx: list[int] = []
        offset, items = 0, []
        for i in cohort.items:
            w = i.job.width
            if not i.cancelled:
                keep_idx.extend(range(offset, offset + w))
                items.append(i)
            offset += w
        cohort.items = items
        cohort.state = model.take_state(cohort.state, np.array(keep_idx, dtype=np.int64))
        if not items:
            return [], 0
    rows = sum(i.job.width for i in cohort.items)
    cohort.state = step_jobs(model, [i.job for i in cohort.items], cohort.state)
    finished = [i for i in cohort.items if i.job.done]
    cohort.items = [i for i in cohort.items if not i.job.done]
    return finished, rows
