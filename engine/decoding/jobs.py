"""Requests being decoded: `RowJob` (every per-row sampling method: its rows live in the
batch's RowTable, which delivers each finished caption through `deliver`) and `BeamJob`
(beam search: keeps its texts and steps itself, `inputs()` -> batched model call -> `step`).

Best-of-N: a RowJob decodes `n_candidates` rows for each of its `n` captions, all in the same
batch, and keeps the best of each group by the model's scorer (scoring.py). A BeamJob's
candidates are its final beams: it samples among them by their scores (Gumbel-max with the
request's generator), so each seed gets its own caption. Either way a caption depends only
on its request and seed, and the chosen ones come best first with their score.

A request may bring score terms of its own (`CaptionRequest.terms`, e.g. the taste of the
server it is for): they join the model's scorer for that request's pick only, so requests with
different terms still share the batch, and one request's terms never touch another's captions.
The same taste may also tilt the request's sampling (`CaptionRequest.tilt`, tilt.py: per-row
methods; a beam search ignores it), row by row, with the same isolation.

Both follow the caption rules: exactly `n_boxes` boxes, no empty box unless allowed, every box
closed within `max_len` (pickers.rule_code).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from engine.decoding import repeats
from engine.decoding.pickers import (
    FORBID_END,
    FORCE_END,
    LENGTH_TARGETED,
    Decoding,
    beam_floor,
    rule_code,
)
from engine.decoding.scoring import Scorer, ScoreTerm
from engine.decoding.tilt import TasteTilt
from engine.decoding.unseen import name_phrase
from memebot.artifact.vocab import BOS
from memebot.caption_format import BOX_END, MAX_CHARS, caption_text

if TYPE_CHECKING:
    from engine.decoding.model import LoadedModel

__all__ = ["BeamJob", "CaptionRequest", "Job", "RowJob", "Sampled", "make_job"]


@dataclass
class Sampled:
    boxes: list[str]
    logprob: float  # natural log of the caption's probability under the model (generated part)
    template: str = ""
    chars: int = 0  # characters generated (markers included; the start text is not)
    score: float | None = None  # the scorer's total, once chosen (scoring.py)
    score_parts: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return caption_text(self.boxes)


@dataclass(frozen=True)
class CaptionRequest:
    template: str  # slug in the model's template table; unknown slugs use the generic slot
    n_boxes: int
    start: str = ""  # the caption starts with this; `|` closes earlier boxes
    max_len: int = MAX_CHARS  # characters of `box|box|`, markers included
    decoding: Decoding = Decoding()
    seed: int | None = None  # same seed, same caption
    n: int = 1  # captions returned
    allow_empty_boxes: bool = False
    n_candidates: int = 1  # rows decoded per caption; the best by score is kept (not beam)
    # (term, weight) added to the model's scorer for this request's pick (a server's taste)
    terms: tuple[tuple[ScoreTerm, float], ...] = field(default=(), compare=False)
    # the weight of well_formed for this request's pick (None: the model scorer's)
    well_formed_weight: float | None = None
    # a template with no captions may open a box with its name (engine/decoding/unseen.py);
    # False: never (the generic slot alone, what bench/unseen_templates.py compares with)
    name_seed: bool = True
    # the server's taste acting on this request's sampling (tilt.py; per-row methods only)
    tilt: TasteTilt | None = field(default=None, compare=False)


class _JobBase:
    """What both kinds of job know of their request: conditioning, the parsed start text."""

    def __init__(self, model: LoadedModel, req: CaptionRequest):
        if req.n_boxes < 1:
            raise ValueError("n_boxes must be at least 1")
        if req.n < 1 or req.n_candidates < 1:
            raise ValueError("n and n_candidates must be at least 1")
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

    @property
    def scorer(self) -> Scorer:
        """What this request's candidates are chosen by: the model's scorer plus its terms."""
        scorer = self.model.scorer
        if self.req.well_formed_weight is not None:
            scorer = replace(scorer, well_formed_weight=self.req.well_formed_weight)
        for term, weight in self.req.terms:
            scorer = scorer.with_term(term, weight)
        return scorer

    def _finish(self, text: str, logprob: float) -> Sampled:
        boxes = text.split(BOX_END)[: self.req.n_boxes]
        chars = len(text) - len(self.req.start)
        return Sampled(boxes, logprob, self.req.template, chars)

    def _scored(self, cands: list[Sampled]) -> tuple[list[Sampled], np.ndarray]:
        """`cands` with their scores filled in, and the totals [k]."""
        s = self.scorer.score(
            [c.text for c in cands],
            self.req.template,
            [c.logprob for c in cands],
            [c.chars for c in cands],
        )
        out = [
            replace(c, score=float(s.total[i]), score_parts=s.parts_of(i))
            for i, c in enumerate(cands)
        ]
        return out, s.total


class RowJob(_JobBase):
    """A per-row-sampled request: `n * n_candidates` independent rows, kept by the RowTable
    once joined; rows [i * n_candidates, (i + 1) * n_candidates) are caption i's candidates."""

    def __init__(self, model: LoadedModel, req: CaptionRequest):
        if req.decoding.method == "beam":
            raise ValueError("a beam request is a BeamJob")
        super().__init__(model, req)
        self.group = astuple(req.decoding)  # rows with equal decodings are picked together
        # A template without captions whose name is a phrase: some rows open a box with it.
        phrase = name_phrase(model.templates.get(req.template)) if req.name_seed else None
        self.phrase_ids: np.ndarray | None = (
            model.vocab.encode(phrase) if phrase and not req.start else None
        )
        self.lengths: list[tuple[float, ...]] | None = (
            model.templates.length_quantiles(req.template, req.n_boxes)
            if req.decoding.method in LENGTH_TARGETED
            else None
        )
        # greedy rows are all alike: one candidate each is the same caption for less work
        self.per_caption = 1 if req.decoding.method == "greedy" else req.n_candidates
        self.rows = 0 if self.results else req.n * self.per_caption
        self._by_row: list[Sampled | None] = [None] * self.rows
        self._open = self.rows  # rows still going
        self._chosen: list[Sampled] | None = None

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

    def deliver(self, caption: Sampled, row: int) -> None:
        """Row `row` of this job finished (called by the RowTable)."""
        assert self._open > 0 and self._by_row[row] is None, "a row finished twice"
        self._by_row[row] = caption
        self._open -= 1

    def captions(self) -> list[Sampled]:
        """The best candidate of each caption's group by score, best first (scored once the
        job is done; before that, the groups finished so far)."""
        if self._chosen is not None:
            return self._chosen
        if self.results:  # the start text closed every box: that is the one caption
            chosen, _ = self._scored(self.results)
        else:
            k = self.per_caption
            groups = [self._by_row[g * k : (g + 1) * k] for g in range(self.req.n)]
            ready = [c for grp in groups if all(grp) for c in grp if c is not None]
            cands, total = self._scored(ready)
            best = [
                g * k + int(np.argmax(total[g * k : (g + 1) * k])) for g in range(len(ready) // k)
            ]
            best.sort(key=lambda i: -total[i])  # stable: equal scores keep caption order
            chosen = [cands[i] for i in best]
        if self.done:
            self._chosen = chosen
        return chosen


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
        self.marks = repeats.marks(self.id_char)  # [V] what the repetition guard limits
        self.fed = 0  # prefix ids fed so far
        self.rng = np.random.default_rng(req.seed)  # the choice among the final beams
        self._chosen: list[Sampled] | None = None
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
        # the repetition guard (repeats.py) on each text's last characters, start text included
        tails = [repeats.tail_run(row.text) for row in self.rows]
        last = np.array([-1 if ch is None else self.model.vocab.id_of(ch) for ch, _ in tails])
        allowed = repeats.forbid(allowed, last, np.array([n for _, n in tails]), self.marks)
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
        """`n` of the final beams, sampled without replacement in proportion to exp(score)
        (Gumbel-max with the request's generator): same seed, same captions; other seeds,
        other beams. Drawn once, when the search is done."""
        if self._chosen is not None:
            return self._chosen
        ranked = sorted(self.results, key=lambda s: -s.logprob)  # a fixed order to draw over
        if not ranked:
            return []
        cands, total = self._scored(ranked)
        keys = total.astype(np.float64) + self.rng.gumbel(size=len(cands))
        chosen = [cands[int(i)] for i in np.argsort(-keys, kind="stable")[: self.req.n]]
        chosen.sort(key=lambda s: -(s.score or 0.0))  # best first, as every reply
        if self.done:
            self._chosen = chosen
        return chosen


Job = RowJob | BeamJob


def make_job(model: LoadedModel, req: CaptionRequest) -> Job:
    """The job for a request: beam search steps itself, every other method is row-sampled."""
    return BeamJob(model, req) if req.decoding.method == "beam" else RowJob(model, req)
