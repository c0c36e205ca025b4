"""Continuous batching: every in-flight caption advances one character per batched model call.

New requests join at the next step, finished ones leave, and a model swap starts a new cohort:
jobs admitted before the swap finish on the model they started with. The decoding loop runs in
its own thread, step after step, so it never waits for the event loop: the event loop hands
requests over through a locked queue; finished captions go back through a deque that the loop
drains, polling every millisecond while requests are in flight (one `call_soon_threadsafe`
wake-up per idle-to-busy change, not per step). The model step releases the GIL, so HTTP
handling and decoding overlap on two cores.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.decoding.batch import Batch
from engine.decoding.jobs import CaptionRequest, Job, Sampled, make_job
from engine.decoding.model import LoadedModel
from memebot.logs import get_logger

log = get_logger(__name__)
DRAIN_POLL = 0.001  # seconds between looks at finished captions while they keep coming


class QueueFull(Exception):
    """The pending queue is at its bound; the client should retry later."""


@dataclass
class _Pending:
    job: Job
    future: asyncio.Future[list[Sampled]]
    cancelled: bool = False


@dataclass
class _Cohort:
    batch: Batch  # its model is the cohort's: a swap starts a new cohort
    items: list[_Pending] = field(default_factory=list)


class Scheduler:
    def __init__(self, model: LoadedModel, *, max_queue: int = 256, max_rows: int = 256):
        self.model = model
        self.max_queue = max_queue
        self.max_rows = max_rows  # rows (captions x beams) per model call
        self._pending: deque[_Pending] = deque()  # guarded by _cv
        self._cohorts: list[_Cohort] = []  # owned by the decoding thread
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Outcomes on their way to the event loop (appended by the decoding thread, drained on
        # the loop) and whether a drain is already scheduled.
        self._finished: deque[tuple[_Pending, list[Sampled] | BaseException]] = deque()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.steps = 0
        self.on_step: Callable[[int], None] | None = None  # called with the rows of each model call

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def in_flight(self) -> int:
        return sum(len(c.items) for c in list(self._cohorts))

    def start(self) -> None:
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="memebot-decoder", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        """Stop the decoding thread; requests still waiting or in flight are cancelled."""
        thread = self._thread
        if thread is None:
            return
        with self._cv:
            self._stopping = True
            self._cv.notify()
        await asyncio.to_thread(thread.join)
        self._thread = None
        leftovers = [*self._pending, *(i for c in self._cohorts for i in c.items)]
        self._pending.clear()
        self._cohorts.clear()
        for item in leftovers:
            item.future.cancel()

    def swap_model(self, model: LoadedModel) -> None:
        """Requests admitted from now on use `model`; in-flight ones finish on the old one."""
        self.model = model

    async def submit(self, req: CaptionRequest, timeout: float | None = None) -> list[Sampled]:
        if len(self._pending) >= self.max_queue:
            raise QueueFull
        job = make_job(self.model, req)
        if job.done:  # the start text already closed every box
            return job.captions()
        fut: asyncio.Future[list[Sampled]] = asyncio.get_running_loop().create_future()
        item = _Pending(job, fut)
        with self._cv:
            self._pending.append(item)
            self._cv.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except (TimeoutError, asyncio.CancelledError):
            item.cancelled = True  # the loop drops its rows at the next step
            raise

    def _take_pending(self) -> list[_Pending]:
        """Waiting requests that fit in the batch, oldest first (called holding _cv: it only
        pops, so `submit` never waits for the batch's bookkeeping). A job counts the rows it
        may grow to (a beam job its full width), so a step never exceeds `max_rows`, except
        for one job wider than that on its own."""
        rows = sum(c.batch.max_rows for c in self._cohorts)
        taken: list[_Pending] = []
        while self._pending:
            item = self._pending[0]
            width = item.job.max_width
            if not item.cancelled and rows and rows + width > self.max_rows:
                break  # oldest first: the head waits for room, nothing overtakes it
            self._pending.popleft()
            if not item.cancelled:
                taken.append(item)
                rows += width
        return taken

    def _admit(self, items: list[_Pending]) -> None:
        """Let `items` join their model's batch at the next step (decoding thread)."""
        joining: dict[int, list[_Pending]] = {}
        for item in items:
            model = item.job.model
            cohort = next((c for c in self._cohorts if c.batch.model is model), None)
            if cohort is None:
                cohort = _Cohort(Batch(model))
                self._cohorts.append(cohort)
            joining.setdefault(id(cohort), []).append(item)
        for cohort in self._cohorts:
            new = joining.get(id(cohort))
            if not new:
                continue
            try:
                cohort.batch.add([i.job for i in new])
            except Exception as e:  # a bug in admission fails these requests, not the engine
                log.exception("admitting %d requests failed", len(new))
                self._hand_back([(i, e) for i in new])
            else:
                cohort.items.extend(new)

    def _hand_back(self, done: list[tuple[_Pending, list[Sampled] | BaseException]]) -> None:
        """Queue outcomes for the event loop, waking it only when it is not already polling:
        each wake-up is a write to the loop's self-pipe, after which this thread must win the
        GIL back from the loop (12% of the decoding thread's time at 64 clients)."""
        if not done or self._loop is None:
            return
        self._finished.extend(done)
        if not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        """On the event loop: resolve every outcome queued so far. While requests are in
        flight, look again after DRAIN_POLL instead of being woken for each step's outcomes."""
        done = []
        while self._finished:
            done.append(self._finished.popleft())
        _resolve(done)
        if self._loop is not None and (self.in_flight or self._pending):
            self._loop.call_later(DRAIN_POLL, self._drain)
            return
        self._wake_pending = False
        if self._finished:  # queued between the pops and the line above: no wake-up was sent
            self._wake_pending = True
            self._drain()

    def _run(self) -> None:
        """The decoding thread: admit, step every cohort once, hand back finished captions."""
        while True:
            with self._cv:
                while not self._stopping and not self._pending and not self._cohorts:
                    self._cv.wait()
                if self._stopping:
                    return
                joining = self._take_pending()
            self._admit(joining)
            for cohort in list(self._cohorts):
                done: list[tuple[_Pending, list[Sampled] | BaseException]] = []
                try:
                    finished, rows = _step(cohort)
                    done = [(i, _captions(i)) for i in finished]
                except Exception as e:  # a decoding bug fails its cohort, not the engine
                    log.exception("decoding step failed; failing %d requests", len(cohort.items))
                    done = [(i, e) for i in cohort.items]
                    cohort.items = []
                    rows = 0
                self.steps += 1
                if self.on_step and rows:
                    self.on_step(rows)
                self._hand_back(done)
                if not cohort.items:
                    self._cohorts.remove(cohort)


def _captions(item: _Pending) -> list[Sampled] | BaseException:
    """A finished job's chosen captions, or what choosing them raised: a failing score term
    fails its own request only (the finished item has left its cohort already)."""
    try:
        return item.job.captions()
    except Exception as e:
        log.exception("scoring a finished request failed")
        return e


def _resolve(done: list[tuple[_Pending, list[Sampled] | BaseException]]) -> None:
    """On the event loop: complete the futures of finished (or failed) requests."""
    for item, outcome in done:
        if item.future.done():
            continue
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)


def _step(cohort: _Cohort) -> tuple[list[_Pending], int]:
    """One batched model call for a cohort; returns the items that finished and the rows."""
    # Drop cancelled (timed-out) requests before spending compute on them.
    cancelled = [i for i in cohort.items if i.cancelled]
    if cancelled:
        cohort.batch.drop([i.job for i in cancelled])
        cohort.items = [i for i in cohort.items if not i.cancelled]
        if not cohort.items:
            return [], 0
    rows = cohort.batch.rows
    cohort.batch.step()
    finished = [i for i in cohort.items if i.job.done]
    cohort.items = [i for i in cohort.items if not i.job.done]
    return finished, rows
