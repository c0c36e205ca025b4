"""Requests being decoded: `RowJob` (every per-row sampling method: its rows live in the
batch's RowTable, which delivers each finished caption through `deliver`) and `BeamJob`
(beam search: keeps its texts and steps itself, `inputs()` -> batched model call -> `step`).

Both follow the caption rules: exactly `n_boxes` boxes, no empty box unless allowed, every box
closed within `max_len` (pickers.rule_code).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from engine.decoding.pickers import FORBID_END, FORCE_END, Decoding, beam_floor, rule_code
from memebot.artifact.vocab import BOS
from memebot.caption_format import BOX_END, MAX_CHARS

if TYPE_CHECKING:
    from engine.decoding.model import LoadedModel

__all__ = ["BeamJob", "CaptionRequest", "Job", "RowJob", "Sampled", "make_job"]


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


class _JobBase:
    """What both kinds of job know of their request: conditioning, the parsed start text."""

    def __init__(self, model: LoadedModel, req: CaptionRequest):
        if req.n_boxes < 1:
            raise ValueError("n_boxes must be at least 1")
        limit = model.max_chars  # the transformer's positions: captions stop short of them
        if limit is not None and req.max_len > limit:
            per_box = 1 if req.allow_empty_boxes else 2  # schema.check_caption_fits' rule
            *closed, open_part = req.start.split(BOX_END)
            left = req.n_boxes - len(closed)
            need = 0 if left <= 0 else (1 if open_part else per_box) + per_box * (left - 1)
            if len(req.start) + need > limit:
                raise ValueError(
                    f"start: {len(req.start)} characters leave too little room for "
                    f"{req.n_boxes} box(es) in the {limit} characters this model writes"
                )
            req = replace(req, max_len=limit)
        self.req = req
        self.model = model
        self.cond = model.condition(model.templates.get(req.template))
        self.prefix = [BOS, *model.vocab.encode(req.start).tolist()]  # ids fed first
        self.start_boxes = req.start.count(BOX_END)  # boxes the start text closes
        self.start_box_len = len(req.start) - (req.start.rfind(BOX_END) + 1)
        self.results: list[Sampled] = []
        if self.start_boxes >= req.n_boxes:  # the start text already closes every box
            self.results = [self._finish(req.start, 0.0)]

    def _finish(self, text: str, logprob: float) -> Sampled:
        boxes = text.split(BOX_END)[: self.req.n_boxes]
        return Sampled(boxes=boxes, logprob=logprob, template=self.req.template)


class RowJob(_JobBase):
    """A per-row-sampled request: `n` independent rows, kept by the RowTable once joined."""

    def __init__(self, model: LoadedModel, req: CaptionRequest):
        if req.decoding.method == "beam":
            raise ValueError("a beam request is a BeamJob")
        super().__init__(model, req)
        self.group = astuple(req.decoding)  # rows with equal decodings are picked together
        self.lengths: list[tuple[float, ...]] | None = (
            model.templates.length_quantiles(req.template, req.n_boxes)
            if req.decoding.method == "calibrated"
            else None
        )
        self._open = 0 if self.results else req.n  # rows still going

    @property
    def done(self) -> bool:
        return self._open == 0

    @property
    def width(self) -> int:
        """Rows this job takes in a batched step."""
        return self._open

    @property
    def max_width(self) -> int:
        """Rows it may take at most (its rows never grow)."""
        return self._open

    def deliver(self, caption: Sampled) -> None:
        """One of this job's rows finished (called by the RowTable)."""
        assert self._open > 0, "more captions than rows"
        self.results.append(caption)
        self._open -= 1

    def captions(self) -> list[Sampled]:
        return self.results[: self.req.n]


@dataclass(slots=True)
class _Row:
    """A beam-search text in progress."""

    text: str
    logprob: float
    last: int  # id fed at the next step
    boxes: int  # markers in text (closed boxes)
    box_len: int  # characters in the open box


class BeamJob(_JobBase):
    """Beam search: up to `beam_width` texts, stepped by the job itself."""

    def __init__(self, model: LoadedModel, req: CaptionRequest):
        if req.decoding.method != "beam":
            raise ValueError("only a beam request is a BeamJob")
        super().__init__(model, req)
        self.id_char = ["", "", "?", *model.vocab.chars]  # id -> character (specials empty)
        self.end_id = model.vocab.box_end_id
        self.fed = 0  # prefix ids fed so far
        self.rows = (
            []
            if self.results
            else [_Row(req.start, 0.0, BOS, self.start_boxes, self.start_box_len)]
        )

    @property
    def done(self) -> bool:
        return not self.rows

    @property
    def width(self) -> int:
        """Rows this job takes in the current batched step."""
        return len(self.rows)

    @property
    def max_width(self) -> int:
        """Rows it may grow to: what admission must count (MEMEBOT_MAX_BATCH)."""
        return 0 if self.done else self.req.decoding.beam_width

    def inputs(self) -> tuple[list[int], list[int]]:
        """Ids fed this step and their box indices (markers up to and including the id)."""
        if self.fed < len(self.prefix):
            return [self.prefix[self.fed]], [self.req.start[: self.fed].count(BOX_END)]
        return [r.last for r in self.rows], [r.boxes for r in self.rows]

    def _code(self, row: _Row) -> int:
        """What the caption rules allow next (pickers.rule_code; beam has no length targets)."""
        r = self.req
        return rule_code(
            len(row.text), row.boxes, row.box_len, 0, r.n_boxes, r.max_len, r.allow_empty_boxes
        )

    def step(self, logp: np.ndarray) -> list[int]:
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
                self.results.append(self._finish(new.text, new.logprob))
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
        return sorted(self.results, key=lambda s: -s.logprob)[: self.req.n]


Job = RowJob | BeamJob


def make_job(model: LoadedModel, req: CaptionRequest) -> Job:
    """The job for a request: beam search steps itself, every other method is row-sampled."""
    return BeamJob(model, req) if req.decoding.method == "beam" else RowJob(model, req)
