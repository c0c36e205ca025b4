"""Caption sampling shared by the training callback, `memebot generate` and the engine.

A `CaptionJob` is one request being decoded (one row per sampled candidate, up to `beam_width`
rows for beam search); it enforces the caption rules: exactly `n_boxes` boxes, no empty box
unless allowed, every box closed within `max_len`, and for the default `calibrated` decoding a
length per box drawn from the template's real captions. The characters themselves are picked
for all jobs' rows at once (training/pickers.py). `run_jobs` advances any number of jobs in
lockstep, one batched model step per character; the engine's scheduler drives the same jobs
with requests joining and leaving between steps (continuous batching).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

import numpy as np

from training.cleaning import MAX_CHARS
from training.data import BOX_END
from training.pickers import (
    FORBID_END,
    FORCE_END,
    FREE,
    METHODS,
    PREFER_END,
    Decoding,
    beam_floor,
    pick,
    pick_rows,
)
from training.runtime import LoadedModel
from training.templates import LENGTH_LEVELS
from training.vocab import BOS, N_SPECIAL

# calibrated: a box may close this many characters before its drawn length, because it then
# runs on to the next word end (3 centres the shipped model's lengths; docs/BENCHMARKS.md).
CLOSE_EARLY = 3
__all__ = ["METHODS", "CaptionJob", "CaptionRequest", "Decoding", "Sampled", "pick", "run_jobs"]


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
    text: str
    logprob: float
    last: int  # id fed at the next step
    boxes: int  # markers in text (closed boxes)
    box_len: int  # characters in the open box
    target: int = 0  # calibrated: the length the open box aims for (0: no target)


@dataclass(slots=True)
class _Sample:
    """A job's rows waiting for characters this step."""

    job: CaptionJob
    parents: list[int]  # for each row, the index of the state row it continues
    logp: np.ndarray  # [rows, V]
    u: np.ndarray  # [rows, 2] uniform draws from the job's generator
    codes: list[int]  # per row: pickers.FREE / FORBID_END / FORCE_END / PREFER_END


class _Uniforms:
    """A request's uniform draws, fetched from its generator 64 at a time rather than one
    call per step; the values come in exactly the order single draws would give."""

    __slots__ = ("at", "buf", "rng")
    BLOCK = 64

    def __init__(self, seed: int | None):
        self.rng = np.random.default_rng(seed)
        self.buf = np.empty(0)
        self.at = 0

    def take(self, n: int) -> np.ndarray:
        if self.at + n > len(self.buf):
            fresh = self.rng.random(max(self.BLOCK, n))
            self.buf = np.concatenate([self.buf[self.at :], fresh])
            self.at = 0
        self.at += n
        return self.buf[self.at - n : self.at]


class CaptionJob:
    """One request in flight. Per step: `inputs()` -> batched model call -> `to_sample(logp)`
    -> (vectorised pick over every job's rows) -> `accept(chars)`, until `done`."""

    def __init__(self, model: LoadedModel, req: CaptionRequest):
        if req.n_boxes < 1:
            raise ValueError("n_boxes must be at least 1")
        self.req = req
        self.model = model
        self.id_char = ["", "", "?", *model.vocab.chars]  # id -> character (specials empty)
        self.end_id = model.vocab.box_end_id
        self.cond = model.condition(model.templates.get(req.template))
        self.uniforms = _Uniforms(req.seed)
        self.group = astuple(req.decoding)  # jobs with equal decodings are picked together
        self.lengths = (
            model.templates.length_quantiles(req.template, req.n_boxes)
            if req.decoding.method == "calibrated"
            else None
        )
        self.prefix = [BOS, *model.vocab.encode(req.start).tolist()]
        self.fed = 0  # prefix ids fed so far
        self.parents: list[int] = []  # set when the job consumes a step by itself
        boxes = req.start.count(BOX_END)
        box_len = len(req.start) - (req.start.rfind(BOX_END) + 1)
        self.rows = [_Row(req.start, 0.0, BOS, boxes, box_len, self._target(boxes))]
        self.results: list[Sampled] = []
        if boxes >= req.n_boxes:  # the start text already closes every box
            self.results = [self._finish(self.rows[0])]
            self.rows = []

    @property
    def done(self) -> bool:
        return not self.rows

    @property
    def width(self) -> int:
        return len(self.rows)

    def inputs(self) -> tuple[list[int], list[int]]:
        """Ids fed this step and their box indices (markers up to and including the id)."""
        if self.fed < len(self.prefix):
            return [self.prefix[self.fed]], [self.req.start[: self.fed].count(BOX_END)]
        return [r.last for r in self.rows], [r.boxes for r in self.rows]

    def _target(self, box: int) -> int:
        """calibrated: a length for box `box`, drawn from the template's real box lengths."""
        if self.lengths is None or box >= self.req.n_boxes:
            return 0
        q = self.lengths[box]
        drawn = float(np.interp(self.uniforms.take(1)[0], LENGTH_LEVELS, q))
        return max(1, round(drawn - CLOSE_EARLY))

    def _code(self, row: _Row) -> int:
        """What the caption rules allow next. The length budget keeps room for every remaining
        box: one character plus its marker each (just the marker if empty boxes are allowed),
        so `max_len` never empties a box."""
        empty_ok = self.req.allow_empty_boxes
        r = self.req.n_boxes - row.boxes  # boxes still open, the current one included
        n = len(row.text)
        at_box_start = row.box_len == 0
        per_box = 1 if empty_ok else 2
        room_if_char = self.req.max_len - (n + 1) - (per_box * r - (0 if empty_ok else 1))
        if room_if_char < 0:  # one more character would leave too little room: close the box
            if not at_box_start or empty_ok or r * per_box > self.req.max_len - n:
                return FORCE_END
        elif at_box_start and not empty_ok:
            return FORBID_END
        if row.target:
            return FORBID_END if row.box_len < row.target else PREFER_END
        return FREE

    def _finish(self, row: _Row) -> Sampled:
        boxes = row.text.split(BOX_END)[: self.req.n_boxes]
        return Sampled(boxes=boxes, logprob=row.logprob, template=self.req.template)

    def to_sample(self, logp: np.ndarray) -> _Sample | None:
        """Consume this step's log-probabilities [width, V]. Returns the rows that need a
        character picked, or None when the job used the step itself (prefix, beam search);
        then `self.parents` maps each next-step row to the state row it continues."""
        if self.fed < len(self.prefix):
            self.fed += 1
            if self.fed < len(self.prefix):
                self.parents = [0]
                return None
            # Prefix consumed: this step's output is the first free distribution.
            if self.req.decoding.method != "beam" and self.req.n > 1:
                f = self.rows[0]
                self.rows = [
                    _Row(f.text, 0.0, BOS, f.boxes, f.box_len, self._target(f.boxes))
                    for _ in range(self.req.n)
                ]
                return self._sample([0] * self.req.n, np.repeat(logp[:1], self.req.n, axis=0))
        if self.req.decoding.method == "beam":
            self.parents = self._beam(logp)
            return None
        return self._sample(list(range(len(self.rows))), logp)

    def _sample(self, parents: list[int], logp: np.ndarray) -> _Sample:
        n = len(self.rows)
        codes = [self._code(r) for r in self.rows]
        return _Sample(self, parents, logp, self.uniforms.take(2 * n).reshape(n, 2), codes)

    def accept(self, sample: _Sample, chars: np.ndarray) -> list[int]:
        """Append the picked characters [rows]; returns the parents of the rows that go on."""
        keep, rows = [], []
        for i, row in enumerate(self.rows):
            c = int(chars[i])
            row = self._extend(row, c, row.logprob + float(sample.logp[i, c]))
            if row.boxes >= self.req.n_boxes:
                self.results.append(self._finish(row))
            else:
                rows.append(row)
                keep.append(sample.parents[i])
        self.rows = rows
        return keep

    def _extend(self, row: _Row, c: int, logprob: float) -> _Row:
        if c == self.end_id:
            nxt = row.boxes + 1
            return _Row(row.text + BOX_END, logprob, c, nxt, 0, self._target(nxt))
        return _Row(row.text + self.id_char[c], logprob, c, row.boxes, row.box_len + 1, row.target)

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


def step_jobs(model: LoadedModel, jobs: Sequence[CaptionJob], state: Any) -> Any:
    """One batched model call for `jobs` (whose rows make up `state`, in order); every job
    consumes its rows' log-probabilities. Returns the state for the jobs still running."""
    chars: list[int] = []
    boxes: list[int] = []
    conds: list[int] = []
    widths = []
    for j in jobs:
        c, b = j.inputs()
        chars += c
        boxes += b
        conds += [j.cond] * len(c)
        widths.append(len(c))
    logp, state = model.step(state, np.array(chars), np.array(boxes), np.array(conds))
    logp[:, :N_SPECIAL] = -np.inf  # padding, BOS and UNK are never generated
    parents: list[list[int]] = []
    groups: dict[tuple[Any, ...], list[tuple[int, _Sample]]] = {}
    offset = 0
    for k, (j, w) in enumerate(zip(jobs, widths, strict=True)):
        sample = j.to_sample(logp[offset : offset + w])
        if sample is None:  # the job used the step itself (prefix, beam)
            parents.append(j.parents)
        else:  # filled in by `accept` after the vectorised pick below
            parents.append([])
            groups.setdefault(j.group, []).append((k, sample))
        offset += w
    # One vectorised pick per distinct decoding over every job's rows.
    end_id, space_id = model.vocab.box_end_id, model.vocab.space_id
    for items in groups.values():
        samples = [s for _, s in items]
        picked = pick_rows(
            np.concatenate([s.logp for s in samples]),
            samples[0].job.req.decoding,
            np.concatenate([s.u for s in samples]),
            np.array([c for s in samples for c in s.codes], dtype=np.int8),
            end_id,
            space_id,
        )
        at = 0
        for k, s in items:
            n = len(s.parents)
            parents[k] = s.job.accept(s, picked[at : at + n])
            at += n
    keep: list[int] = []
    offset = 0
    for p, w in zip(parents, widths, strict=True):
        keep += [offset + i for i in p]
        offset += w
    return model.take_state(state, np.array(keep, dtype=np.int64))


def run_jobs(model: LoadedModel, jobs: Sequence[CaptionJob]) -> None:
    """Advance every job to completion in lockstep: one batched model step per character."""
    active = [j for j in jobs if not j.done]
    state = model.initial_state(sum(j.width for j in active))
    while active:
        state = step_jobs(model, active, state)
        active = [j for j in active if not j.done]


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
