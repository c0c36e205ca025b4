"""Caption sampling shared by the training callback, `memebot generate` and the engine.

Pickers choose the next character from one row of log-probabilities. A `CaptionJob` is one
request being decoded (one row per sampled candidate, up to `beam_width` rows for beam search);
it enforces the caption rules: exactly `n_boxes` boxes, no empty box unless allowed, every box
closed within `max_len`. `run_jobs` advances any number of jobs in lockstep, one batched model
step per character; the engine's scheduler drives the same jobs with requests joining and
leaving between steps (continuous batching).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.cleaning import MAX_CHARS
from training.data import BOX_END
from training.runtime import LoadedModel
from training.vocab import BOS, N_SPECIAL


@dataclass(frozen=True)
class Decoding:
    method: str = "threshold"  # one of METHODS
    min_score: float = 0.1  # threshold: r ~ U[min_score, 1]; candidates p >= r * top
    temperature: float = 1.0  # temperature/top-k/top-p: reweight probabilities by 1/T
    top_k: int = 0  # top-k: keep the k most likely characters (0 = off)
    top_p: float = 1.0  # top-p: keep the smallest set whose mass reaches p
    beam_width: int = 5  # beam: texts kept per step


METHODS = (
    "threshold",
    "threshold-weighted",
    "beam",
    "greedy",
    "temperature",
    "top-k",
    "top-p",
    "top-k-top-p",
)


def pick(logp: np.ndarray, d: Decoding, rng: np.random.Generator) -> int:
    """One character id from log-probabilities [V] (disallowed ids already at -inf)."""
    if d.method == "greedy":
        return int(np.argmax(logp))
    top = logp.max()
    if d.method == "threshold":
        # p >= r * top, in log space; one candidate uniformly (this runs per row per step).
        r = rng.uniform(d.min_score, 1.0)
        cands = np.flatnonzero(logp >= top + math.log(r))
        return int(cands[int(rng.random() * len(cands))])
    p = np.exp(logp - top)
    if d.method == "threshold-weighted":
        # The same candidates, picked in proportion to their probability: the uniform pick
        # over-draws the end-of-box marker whenever it is a candidate, cutting captions short.
        r = rng.uniform(d.min_score, 1.0)
        return _draw(np.where(p >= r, p, 0.0), rng)
    if d.method not in METHODS:
        raise ValueError(f"unknown decoding method {d.method!r}")
    if d.temperature != 1.0:
        p = np.exp((logp - logp.max()) / max(d.temperature, 1e-6))
    p = p / p.sum()
    if d.method in ("top-k", "top-k-top-p") and d.top_k > 0:
        kth = np.sort(p)[-min(d.top_k, p.size)]
        p = np.where(p >= kth, p, 0.0)
        p /= p.sum()
    if d.method in ("top-p", "top-k-top-p") and d.top_p < 1.0:
        order = np.argsort(-p)
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, d.top_p) + 1)]
        mask = np.zeros_like(p)
        mask[keep] = p[keep]
        p = mask / mask.sum()
    return _draw(p, rng)


def _draw(weights: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn in proportion to non-negative `weights` (need not sum to 1)."""
    cum = np.cumsum(weights)
    return min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), weights.size - 1)


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


@dataclass
class _Row:
    text: str
    logprob: float
    last: int  # id fed at the next step
    boxes: int  # markers in text (closed boxes)


class CaptionJob:
    """One request in flight. `inputs()` -> one step -> `advance(logp)` until `done`."""

    def __init__(self, model: LoadedModel, req: CaptionRequest):
        if req.n_boxes < 1:
            raise ValueError("n_boxes must be at least 1")
        self.req = req
        self.model = model
        self.id_char = ["", "", "?", *model.vocab.chars]  # id -> character (specials empty)
        self.end_id = model.vocab.box_end_id
        self.cond = model.condition(model.templates.get(req.template))
        self.rng = np.random.default_rng(req.seed)
        self.prefix = [BOS, *model.vocab.encode(req.start).tolist()]
        self.fed = 0  # prefix ids fed so far
        self.rows = [_Row(req.start, 0.0, BOS, req.start.count(BOX_END))]
        self.results: list[Sampled] = []
        if req.start.count(BOX_END) >= req.n_boxes:  # the start text already closes every box
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

    def _allowed(self, row: _Row, logp: np.ndarray) -> np.ndarray:
        """Mask ids that would break the caption rules (specials are masked by `step_jobs`).
        The length budget keeps room for every remaining box: one character plus its marker
        each (just the marker if empty boxes are allowed), so `max_len` never empties a box."""
        empty_ok = self.req.allow_empty_boxes
        r = self.req.n_boxes - row.boxes  # boxes still open, the current one included
        n = len(row.text)
        at_box_start = n == 0 or row.text[-1] == BOX_END
        per_box = 1 if empty_ok else 2
        room_if_char = self.req.max_len - (n + 1) - (per_box * r - (0 if empty_ok else 1))
        if room_if_char < 0:  # one more character would leave too little room: close the box
            if not at_box_start or empty_ok or r * per_box > self.req.max_len - n:
                out = np.full_like(logp, -np.inf)
                out[self.end_id] = 0.0
                return out
        elif at_box_start and not empty_ok:
            out = logp.copy()
            out[self.end_id] = -np.inf
            return out
        return logp

    def _finish(self, row: _Row) -> Sampled:
        boxes = row.text.split(BOX_END)[: self.req.n_boxes]
        return Sampled(boxes=boxes, logprob=row.logprob, template=self.req.template)

    def advance(self, logp: np.ndarray) -> list[int]:
        """Consume this step's log-probabilities [width, V]; returns, for each row of the next
        step, the index of the current row whose model state it continues."""
        if self.fed < len(self.prefix):
            self.fed += 1
            if self.fed < len(self.prefix):
                return [0]
            # Prefix consumed: this step's output is the first free distribution.
            if self.req.decoding.method != "beam" and self.req.n > 1:
                first = self.rows[0]
                self.rows = [_Row(first.text, 0.0, BOS, first.boxes) for _ in range(self.req.n)]
                logp = np.repeat(logp[:1], self.req.n, axis=0)
                return self._sample(logp, parents=[0] * self.req.n)
        if self.req.decoding.method == "beam":
            return self._beam(logp)
        return self._sample(logp, parents=list(range(len(self.rows))))

    def _extend(self, row: _Row, c: int, logprob: float) -> _Row:
        return _Row(row.text + self.id_char[c], logprob, c, row.boxes + (c == self.end_id))

    def _sample(self, logp: np.ndarray, parents: list[int]) -> list[int]:
        keep, rows = [], []
        for i, row in enumerate(self.rows):
            c = pick(self._allowed(row, logp[i]), self.req.decoding, self.rng)
            row = self._extend(row, c, row.logprob + float(logp[i, c]))
            if row.boxes >= self.req.n_boxes:
                self.results.append(self._finish(row))
            else:
                rows.append(row)
                keep.append(parents[i])
        self.rows = rows
        return keep

    def _beam(self, logp: np.ndarray) -> list[int]:
        d = self.req.decoding
        floor = math.log(max(d.min_score, 1e-12))
        cands: list[tuple[float, int, int]] = []
        for i, row in enumerate(self.rows):
            lp = self._allowed(row, logp[i])
            ok = np.flatnonzero(lp >= lp.max() + floor)  # candidates above min_score * top
            cands += [(row.logprob + float(logp[i, c]), i, int(c)) for c in ok]
        cands.sort(key=lambda t: -t[0])
        keep: list[int] = []
        rows: list[_Row] = []
        for score, i, c in cands:
            if len(rows) + len(self.results) >= d.beam_width:
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
    keep: list[int] = []
    offset = 0
    for j, w in zip(jobs, widths, strict=True):
        keep += [offset + k for k in j.advance(logp[offset : offset + w])]
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
