"""Stepping requests together: one batched model call per character for every job in flight.

A `Batch` holds the rows of its RowJobs in one RowTable (rowtable.py: their characters are
picked in one vectorised call per decoding, pickers.py) and its BeamJobs, which step
themselves. `run_jobs` runs jobs to completion; the engine's scheduler adds and drops jobs
between steps (continuous batching). `sample_captions` is the one-call form the training
callback and tests use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.decoding.jobs import BeamJob, CaptionRequest, Job, RowJob, Sampled, make_job
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from engine.decoding.rowtable import RowTable
from memebot.artifact.vocab import N_SPECIAL
from memebot.caption_format import MAX_CHARS

# calibrated: a box may close this many characters before its drawn length, because it then
# runs on to the next word end (3 centres the shipped model's lengths; docs/BENCHMARKS.md).
CLOSE_EARLY = 3


class Batch:
    """The requests of one model stepping together, one batched model call per character.

    Rows of RowJobs live in a RowTable; BeamJobs step themselves. The model state holds the
    table's rows first, then each beam job's rows in order. Requests
    join (`add`) and leave (finished, or `drop`ped) between steps: continuous batching.
    """

    def __init__(self, model: LoadedModel):
        self.model = model
        self.table = RowTable(model, CLOSE_EARLY)
        self.beams: list[BeamJob] = []
        self.state = model.initial_state(0)

    @property
    def rows(self) -> int:
        return len(self.table) + sum(j.width for j in self.beams)

    @property
    def max_rows(self) -> int:
        """Rows its jobs may grow to (beam jobs at full width): what admission counts."""
        return len(self.table) + sum(j.max_width for j in self.beams)

    @property
    def empty(self) -> bool:
        return not len(self.table) and not self.beams

    def add(self, jobs: Sequence[Job]) -> None:
        """Let `jobs` join at the next step."""
        m = self.model
        jobs = [j for j in jobs if not j.done]
        for job in jobs:
            if isinstance(job, BeamJob):
                self.beams.append(job)
                self.state = m.concat_states([self.state, m.initial_state(job.width)])
        R, total = len(self.table), self.rows
        added = self.table.add([j for j in jobs if isinstance(j, RowJob)])
        if not added:
            return
        fresh = m.initial_state(added)
        if total == R:
            self.state = m.concat_states([self.state, fresh])
        else:  # keep the table's rows in front of the beam rows
            head = m.take_state(self.state, np.arange(R))
            tail = m.take_state(self.state, np.arange(R, total))
            self.state = m.concat_states([head, fresh, tail])

    def drop(self, jobs: Sequence[Job]) -> None:
        """Remove `jobs` (cancelled requests) with their rows."""
        gone = {id(j) for j in jobs}
        keep_rows = [i for i, o in enumerate(self.table.owner) if id(o) not in gone]
        keep, offset, beams = list(keep_rows), len(self.table), []
        for j in self.beams:
            if id(j) not in gone:
                keep += range(offset, offset + j.width)
                beams.append(j)
            offset += j.width
        self.table.take(np.array(keep_rows, dtype=np.int64))
        self.beams = beams
        self.state = self.model.take_state(self.state, np.array(keep, dtype=np.int64))

    def step(self) -> None:
        """One batched model call; finished requests have their captions afterwards."""
        chars, boxes, conds = self.table.inputs()
        extra_c: list[int] = []
        extra_b: list[int] = []
        extra_t: list[int] = []
        widths = []
        for j in self.beams:
            c, b = j.inputs()
            extra_c += c
            extra_b += b
            extra_t += [j.cond] * len(c)
            widths.append(len(c))
        if extra_c:
            chars = np.concatenate([chars, extra_c])
            boxes = np.concatenate([boxes, extra_b])
            conds = np.concatenate([conds, extra_t])
        logp, state = self.model.step(self.state, chars, boxes, conds)
        logp[:, :N_SPECIAL] = -np.inf  # padding, BOS and UNK are never generated
        R = len(self.table)
        keep = [self.table.step(logp[:R])]
        offset, beams = R, []
        for j, w in zip(self.beams, widths, strict=True):
            parents = j.step(logp[offset : offset + w])
            keep.append(np.asarray(parents, dtype=np.int64) + offset)
            if not j.done:
                beams.append(j)
            offset += w
        self.beams = beams
        self.state = self.model.take_state(state, np.concatenate(keep).astype(np.int64))


def run_jobs(model: LoadedModel, jobs: Sequence[Job]) -> None:
    """Advance every job to completion together: one batched model step per character."""
    batch = Batch(model)
    batch.add(jobs)
    while not batch.empty:
        batch.step()


def sample_captions(
    model: LoadedModel,
    templates: Sequence[str],
    *,
    n_boxes: Sequence[int] | None = None,
    start: str = "",
    max_len: int = MAX_CHARS,
    decoding: Decoding = Decoding(),
    seed: int | None = None,
    allow_empty_boxes: bool = False,
) -> list[Sampled]:
    """One caption per entry of `templates`, decoded together (row i uses seed + i)."""
    counts = (
        list(n_boxes)
        if n_boxes is not None
        else [e.box_count if (e := model.templates.get(t)) else 2 for t in templates]
    )
    jobs = [
        make_job(
            model,
            CaptionRequest(
                t,
                counts[i],
                start,
                max_len,
                decoding,
                None if seed is None else seed + i,
                1,
                allow_empty_boxes,
            ),
        )
        for i, t in enumerate(templates)
    ]
    run_jobs(model, jobs)
    return [j.captions()[0] for j in jobs]
