"""The decoding thread: continuous batching, failures, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.decoding.jobs import CaptionRequest
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from engine.decoding.scoring import Scorer
from engine.scheduler import QueueFull, Scheduler
from harness.factories import StepGate, captions_alone

pytestmark = pytest.mark.slow


@dataclasses.dataclass
class FailingModel(LoadedModel):
    """A real model whose first `failures` steps raise, like a bug in a decoding step."""

    failures: int = 1

    def step(
        self, state: Any, chars: np.ndarray, boxes: np.ndarray, conds: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("boom in step")
        return super().step(state, chars, boxes, conds)


def _failing(path: Path, failures: int) -> FailingModel:
    m = load_model(path)
    base = {f.name: getattr(m, f.name) for f in dataclasses.fields(LoadedModel)}
    return FailingModel(**base, failures=failures)


def test_failed_step_fails_its_requests_and_decoding_goes_on(tiny_model: Path) -> None:
    async def scenario() -> None:
        s = Scheduler(_failing(tiny_model, 1))
        s.start()
        try:
            with pytest.raises(RuntimeError, match="boom in step"):
                await s.submit(CaptionRequest("two-buttons", 2, seed=1), timeout=20)
            ok = await s.submit(CaptionRequest("two-buttons", 2, seed=1), timeout=20)
            assert len(ok[0].boxes) == 2 and all(ok[0].boxes)
            assert s.running and s.in_flight == 0
        finally:
            await s.stop()
        assert not s.running

    asyncio.run(scenario())


class Broken:
    """A score term with a bug."""

    name = "broken"

    def score(self, texts: Sequence[str], template: str) -> np.ndarray:
        if template == "y-u-no":
            raise RuntimeError("boom in a score term")
        return np.zeros(len(texts), dtype=np.float32)


def test_a_failing_score_term_fails_its_request_only(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    model.scorer = Scorer(((Broken(), 1.0),))

    async def scenario() -> None:
        s = Scheduler(model)
        s.start()
        try:
            bad = s.submit(CaptionRequest("y-u-no", 2, seed=1, n_candidates=2), timeout=20)
            good = s.submit(CaptionRequest("two-buttons", 2, seed=1, n_candidates=2), timeout=20)
            got = await asyncio.gather(bad, good, return_exceptions=True)
            assert isinstance(got[0], RuntimeError) and "score term" in str(got[0])
            assert isinstance(got[1], list) and got[1][0].score_parts["broken"] == 0.0
            assert s.running and s.in_flight == 0
        finally:
            await s.stop()

    asyncio.run(scenario())


def test_concurrent_requests_share_steps_and_match_alone(tiny_model: Path) -> None:
    m = load_model(tiny_model)
    reqs = [CaptionRequest("success-kid", 2, seed=i) for i in range(12)]
    alone = [a[0] for a in captions_alone(m, reqs)]

    async def scenario() -> tuple[list[list[str]], int]:
        s = Scheduler(m)
        s.start()
        try:
            got = await asyncio.gather(*(s.submit(r, timeout=20) for r in reqs))
            return [g[0].boxes for g in got], s.steps
        finally:
            await s.stop()

    together, steps = asyncio.run(scenario())
    assert together == alone
    # Sharing: far fewer model calls than the captions' characters added up.
    assert steps < sum(len("|".join(b)) + 2 for b in alone) / 2


def test_queue_bound_then_queued_requests_complete(tiny_model: Path) -> None:
    m = load_model(tiny_model)

    async def scenario() -> None:
        s = Scheduler(m, max_queue=2)  # not started: nothing leaves the queue
        waiting = [asyncio.ensure_future(s.submit(CaptionRequest("y-u-no", 2))) for _ in range(2)]
        await asyncio.sleep(0)
        assert s.queue_depth == 2
        with pytest.raises(QueueFull):
            await s.submit(CaptionRequest("y-u-no", 2))
        s.start()
        await asyncio.gather(*waiting)  # started late, the queued requests still complete
        await s.stop()

    asyncio.run(scenario())


def test_hand_back_polls_while_busy_then_goes_quiet_and_wakes_again(tiny_model: Path) -> None:
    """Finished captions reach the event loop by polling while requests are in flight; once
    idle the loop stops polling, and the next request's caption still arrives (no lost
    wake-up). The second wave joins while the first is in flight: the first step is held
    until the second wave is queued."""
    reqs = [CaptionRequest("success-kid", 2, seed=i) for i in range(30)]
    alone = captions_alone(load_model(tiny_model), reqs)
    m = load_model(tiny_model)
    gate = StepGate(m)

    async def settled(s: Scheduler) -> None:
        for _ in range(2000):  # idle again: the poll stops (checked each loop turn)
            if not s._wake_pending:
                break
            await asyncio.sleep(0.001)
        assert not s._wake_pending and s.in_flight == 0 and s.queue_depth == 0

    async def scenario() -> list[list[str]]:
        s = Scheduler(m)
        s.start()
        try:
            first = [asyncio.ensure_future(s.submit(r, timeout=60)) for r in reqs[:10]]
            await asyncio.to_thread(gate.waiting.wait, 60)  # the first step is running
            second = [asyncio.ensure_future(s.submit(r, timeout=60)) for r in reqs[10:20]]
            await asyncio.sleep(0)  # let the submissions run: they queue behind the step
            assert s.queue_depth >= 10 and s.in_flight > 0  # joining while others decode
            gate.opened.set()
            got = await asyncio.gather(*first, *second)
            await settled(s)
            got += await asyncio.gather(*(s.submit(r, timeout=60) for r in reqs[20:]))
            await settled(s)
            return [g[0].boxes for g in got]
        finally:
            gate.opened.set()
            await s.stop()

    assert asyncio.run(scenario()) == [a[0] for a in alone]


def test_admission_counts_a_beam_jobs_full_width(tiny_model: Path) -> None:
    """MEMEBOT_MAX_BATCH bounds every step: a beam job is admitted at the width it will grow
    to (beam_width rows), not at the one row it starts with; every request still finishes."""
    m = load_model(tiny_model)
    beam = Decoding("beam", beam_width=4, min_score=1e-4)
    reqs = [CaptionRequest("two-buttons", 2, decoding=beam) for _ in range(3)]
    reqs += [CaptionRequest("y-u-no", 2, seed=i) for i in range(4)]
    rows: list[int] = []

    async def scenario() -> list[Any]:
        s = Scheduler(m, max_rows=6)
        s.on_step = rows.append
        tasks = [asyncio.ensure_future(s.submit(r, timeout=60)) for r in reqs]
        await asyncio.sleep(0)  # every request queued before the decoding thread starts
        s.start()
        try:
            return await asyncio.gather(*tasks)
        finally:
            await s.stop()

    got = asyncio.run(scenario())
    assert all(len(g[0].boxes) == 2 for g in got)
    assert max(rows) <= 6, max(rows)
    assert max(rows) >= 4  # beams did grow to their width


def test_a_swapped_out_model_is_freed_once_its_cohort_finishes(tiny_model: Path) -> None:
    """A reload keeps nothing of the old model: once the swap is done and the old cohort's last
    request has finished, the old LoadedModel is garbage while the engine keeps running (the
    engine's RSS does not grow per reload)."""
    models = [load_model(tiny_model), load_model(tiny_model)]
    ref = weakref.ref(models[0])

    async def scenario() -> None:
        s = Scheduler(models[0])
        first = asyncio.ensure_future(s.submit(CaptionRequest("y-u-no", 2, seed=1), timeout=20))
        await asyncio.sleep(0)  # admitted on the old model, still queued
        s.swap_model(models[1])
        s.start()
        try:
            assert len((await first)[0].boxes) == 2  # finished on the old model
            # A later request runs on the new model; by the time it is answered the decoding
            # thread has passed the old cohort's removal.
            await s.submit(CaptionRequest("y-u-no", 2, seed=2), timeout=20)
            assert all(c.batch.model is not ref() for c in s._cohorts)
            models.pop(0)
            gc.collect()
            assert ref() is None
        finally:
            await s.stop()

    asyncio.run(scenario())
