"""Caption sampling shared by the training callback, `memebot generate` and the engine.

A `CaptionJob` is one request being decoded (one row per sampled candidate, up to `beam_width`
rows for beam search) under the caption rules: exactly `n_boxes` boxes, no empty box unless
allowed, every box closed within `max_len`, and for the default `calibrated` decoding a length
per box drawn from the template's real captions. A `Batch` steps any number of jobs with one
batched model call per character: the rows of per-row-sampled jobs live in arrays
(training/rowtable.py) and their characters are picked in one vectorised call per decoding
(training/pickers.py); beam jobs step themselves. `run_jobs` runs jobs to completion; the
engine's scheduler adds and drops jobs between steps (continuous batching).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass

import numpy as np

from training.cleaning import MAX_CHARS
from training.data import BOX_END
from training.pickers import (
    FORBID_END,
    FORCE_END,
    METHODS,
    Decoding,
    beam_floor,
    pick,
    rule_code,
)
from training.rowtable import RowTable
from training.runtime import LoadedModel
from training.vocab import BOS, N_SPECIAL

# calibrated: a box may close this many characters before its drawn length, because it then
# runs on to the next word end (3 centres the shipped model's lengths; docs/BENCHMARKS.md).
CLOSE_EARLY = 3
__all__ = [
    "METHODS",
    "Batch",
    "CaptionJob",
    "CaptionRequest",
    "Decoding",
    "Sampled",
    "pick",
    "run_jobs",
]


@dataclass
class Sampled:
    boxes: list[str]
    logprob: float  # natural log of the caption's probability under the model (generated part)
    template: str = ""

    @property
    def text(self) -> str:
        return "".join(b + BOX_END for b in self.boxes)


@dataclass(frozen=True)
class CaptionRequest:
    template: str  # slug in the model's template table; unknown slugs use the generic slot
    n_boxes: int
    start: str = ""  # the caption starts with this; `|` closes earlier boxes
    max_len: int = MAX_CHARS  # characters of `box|box|`, markers included
    decoding: Decoding = Decoding()
    seed: int | None = None  # same seed, same caption
    n: int = 1  # candidates returned
    allow_empty_boxes: bool = False


@dataclass(slots=True)
class _Row:
    """A beam-search text in progress."""

    text: str
    logprob: float
    last: int  # id fed at the next step
    boxes: int  # markers in text (closed boxes)
    box_len: int  # characters in the open box


class CaptionJob:
    """One request in flight. Per-row methods (every method but beam) keep their rows in the
    batch's RowTable (training/rowtable.py), which hands finished captions back here; a beam
    request steps itself: `inputs()` -> batched model call -> `step_beam(logp)`."""

    def __init__(self, model: LoadedModel, req: CaptionRequest):
        if req.n_boxes < 1:
            raise ValueError("n_boxes must be at least 1")
        self.req = req
        self.model = model
        self.beam = req.decoding.method == "beam"
        self.id_char = ["", "", "?", *model.vocab.chars]  # id -> character (specials empty)
        self.end_id = model.vocab.box_end_id
        self.cond = model.condition(model.templates.get(req.template))
        self.group = astuple(req.decoding)  # rows with equal decodings are picked together
        self.lengths = (
            model.templates.length_quantiles(req.template, req.n_boxes)
            if req.decoding.method == "calibrated"
            else None
        )
        self.in_table = False  # set by RowTable.add, with open_rows = its rows still going
        self.open_rows = 0
        self.prefix = [BOS, *model.vocab.encode(req.start).tolist()]
        self.fed = 0  # beam: prefix ids fed so far
        boxes = req.start.count(BOX_END)
        box_len = len(req.start) - (req.start.rfind(BOX_END) + 1)
        self.rows = [_Row(req.start, 0.0, BOS, boxes, box_len)]
        self.results: list[Sampled] = []
        if boxes >= req.n_boxes:  # the start text already closes every box
            self.results = [self._finish(self.rows[0])]
            self.rows = []

    @property
    def done(self) -> bool:
        return self.open_rows == 0 if self.in_table else not self.rows

    @property
    def width(self) -> int:
        """Rows this job takes in a batched step (before joining one: rows it will take)."""
        if self.beam:
            return len(self.rows)
        if self.in_table:
            return self.open_rows
        return 0 if self.done else self.req.n

    def inputs(self) -> tuple[list[int], list[int]]:
        """beam: ids fed this step and their box indices (markers up to and including the id)."""
        if self.fed < len(self.prefix):
            return [self.prefix[self.fed]], [self.req.start[: self.fed].count(BOX_END)]
        return [r.last for r in self.rows], [r.boxes for r in self.rows]

    def _code(self, row: _Row) -> int:
        """What the caption rules allow next (pickers.rule_code; beam has no length targets)."""
        r = self.req
        return rule_code(
            len(row.text), row.boxes, row.box_len, 0, r.n_boxes, r.max_len, r.allow_empty_boxes
        )

    def _finish(self, row: _Row) -> Sampled:
        boxes = row.text.split(BOX_END)[: self.req.n_boxes]
        return Sampled(boxes=boxes, logprob=row.logprob, template=self.req.template)

    def step_beam(self, logp: np.ndarray) -> list[int]:
        """Consume this step's log-probabilities [width, V]; returns, for each row of the next
        step, the index of the state row it continues."""
        if self.fed < len(self.prefix):
            self.fed += 1
            if self.fed < len(self.prefix):
                return [0]
        return self._beam(logp)

    def _extend(self, row: _Row, c: int, logprob: float) -> _Row:
        if c == self.end_id:
            return _Row(row.text + BOX_END, logprob, c, row.boxes + 1, 0)
        return _Row(row.text + self.id_char[c], logprob, c, row.boxes, row.box_len + 1)

    def _beam(self, logp: np.ndarray) -> list[int]:
        d = self.req.decoding
        width = len(self.rows)
        # Candidates: per row, the characters above min_score * top (after the caption rules),
        # scored by the row's log-probability plus theirs; [rows, V] at once.
        lp = logp[:width]
        allowed = lp.copy()
        for i, row in enumerate(self.rows):
            code = self._code(row)
            if code == FORCE_END:
                allowed[i] = -np.inf
                allowed[i, self.end_id] = 0.0  # the marker is the only candidate, whatever p
            elif code == FORBID_END:
                allowed[i, self.end_id] = -np.inf
        cand = allowed >= allowed.max(axis=1, keepdims=True) + beam_floor(d)
        base = np.array([r.logprob for r in self.rows])
        scores = np.where(cand, base[:, None] + lp, -np.inf)  # [rows, V]
        # Best first, ties in (row, char) order; each accepted candidate fills one place.
        need = d.beam_width - len(self.results)
        order = np.argsort(-scores, axis=None, kind="stable")[:need]
        keep: list[int] = []
        rows: list[_Row] = []
        for flat in order:
            i, c = divmod(int(flat), lp.shape[1])
            score = float(scores[i, c])
            if score == -np.inf:
                break
            new = self._extend(self.rows[i], c, score)
            if new.boxes >= self.req.n_boxes:
                self.results.append(self._finish(new))
            else:
                rows.append(new)
                keep.append(i)
        self.rows = rows
        if not rows or len(self.results) >= d.beam_width:
            self.results.sort(key=lambda s: -s.logprob)
            self.rows = []
            return []
        return keep

    def captions(self) -> list[Sampled]:
        out = (
            sorted(self.results, key=lambda s: -s.logprob)
            if self.req.decoding.method == "beam"
            else self.results
        )
        return out[: self.req.n]


class Batch:
    """The requests of one model stepping together, one batched model call per character.

    Rows of per-row-sampled requests live in a RowTable; beam requests step themselves. The
    model state holds the table's rows first, then each beam job's rows in order. Requests
    join (`add`) and leave (finished, or `drop`ped) between steps: continuous batching.
    """

    def __init__(self, model: LoadedModel):
        self.model = model
        self.table = RowTable(model, CLOSE_EARLY)
        self.beams: list[CaptionJob] = []
        self.state = model.initial_state(0)

    @property
    def rows(self) -> int:
        return len(self.table) + sum(j.width for j in self.beams)

    @property
    def empty(self) -> bool:
        return not len(self.table) and not self.beams

    def add(self, jobs: Sequence[CaptionJob]) -> None:
        """Let `jobs` join at the next step."""
        m = self.model
        jobs = [j for j in jobs if not j.done]
        for job in jobs:
            if job.beam:
                self.beams.append(job)
                self.state = m.concat_states([self.state, m.initial_state(job.width)])
        R, total = len(self.table), self.rows
        added = self.table.add([j for j in jobs if not j.beam])
        if not added:
            return
        fresh = m.initial_state(added)
        if total == R:
            self.state = m.concat_states([self.state, fresh])
        else:  # keep the table's rows in front of the beam rows
            head = m.take_state(self.state, np.arange(R))
            tail = m.take_state(self.state, np.arange(R, total))
            self.state = m.concat_states([head, fresh, tail])

    def drop(self, jobs: Sequence[CaptionJob]) -> None:
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
            parents = j.step_beam(logp[offset : offset + w])
            keep.append(np.asarray(parents, dtype=np.int64) + offset)
            if not j.done:
                beams.append(j)
            offset += w
        self.beams = beams
        self.state = self.model.take_state(state, np.concatenate(keep).astype(np.int64))


def run_jobs(model: LoadedModel, jobs: Sequence[CaptionJob]) -> None:
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
        CaptionJob(
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
