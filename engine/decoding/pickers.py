"""Next-character pickers, vectorised over the rows of a batched step.

One call picks for every row that shares a `Decoding`: under load the engine steps hundreds of
rows at once, and a Python loop per row would cost more than the model step itself. Every row
brings its own two uniform draws `u` [R,2] from its request's generator, so a row's choice does
not depend on which other rows share the batch (batched == unbatched for the same seed).

Row controls (the caption rules, decided per row by the row table and beam jobs) arrive as codes:
FREE, FORBID_END (the box may not close yet), FORCE_END (it must close now) and PREFER_END
(`calibrated` and `natural`: the box has reached its drawn length, so close it as soon as the
marker is a candidate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from memebot.decoding import (
    DEFAULT_BEAM_WIDTH,
    DEFAULT_METHOD,
    METHODS,
    NATURAL_START_TOP_P,
    NATURAL_WORD_TOP_P,
    default_length_scale,
    default_min_score,
)

FREE, FORBID_END, FORCE_END, PREFER_END = 0, 1, 2, 3


@dataclass(frozen=True)
class Decoding:
    """How to pick characters; the defaults are the API's (engine/schema/)."""

    method: str = DEFAULT_METHOD  # one of METHODS
    # Threshold family: r ~ U[min_score, 1], candidates p >= r * top; beam: p >= min_score * top.
    # None: the method's default (default_min_score), filled in at construction.
    min_score: float | None = None
    temperature: float = 1.0  # temperature/top-k/top-p: reweight probabilities by 1/T
    top_k: int = 0  # top-k: keep the k most likely characters (0 = off)
    top_p: float = 1.0  # top-p: keep the smallest set whose mass reaches p
    beam_width: int = DEFAULT_BEAM_WIDTH  # beam: texts kept per step
    # natural: the nucleus (probability mass) kept for a word's first character and for the
    # rest of it. Not in the API: the method's own settings (memebot/decoding.py).
    start_top_p: float = NATURAL_START_TOP_P
    word_top_p: float = NATURAL_WORD_TOP_P
    # calibrated, natural: drawn box lengths are scaled by this (not in the API either);
    # None: the method's default (default_length_scale).
    length_scale: float | None = None

    def __post_init__(self) -> None:
        if self.min_score is None:  # frozen: set once, here
            object.__setattr__(self, "min_score", default_min_score(self.method))
        if self.length_scale is None:
            object.__setattr__(self, "length_scale", default_length_scale(self.method))

    @property
    def score(self) -> float:
        """`min_score` as a float (never None once constructed)."""
        return default_min_score(self.method) if self.min_score is None else self.min_score

    @property
    def lengths(self) -> float:
        """`length_scale` as a float (never None once constructed)."""
        return default_length_scale(self.method) if self.length_scale is None else self.length_scale


THRESHOLD_FAMILY = ("threshold", "threshold-weighted", "calibrated")
LENGTH_TARGETED = ("calibrated", "natural")  # box lengths drawn from the template's real ones
LOG_END_FLOOR = math.log(0.02)  # calibrated: see pick_rows
LOG_TILT_FLOOR = math.log(0.02)  # natural with a taste's tilt: see pick_rows
LOG_TILT_FLOOR_IN_WORD = math.log(0.1)  # ... for a letter that continues a word


def tilt_floor(d: Decoding) -> float:
    """The least log share of the top probability a candidate needs for a taste's tilt to
    reach it under `d` (pick_rows draws a tilted row's character among those only; -inf:
    every candidate counts). The row table weighs the tilt on those candidates alone."""
    if d.method == "natural":
        return min(LOG_TILT_FLOOR, LOG_TILT_FLOOR_IN_WORD)
    if d.method in THRESHOLD_FAMILY:
        return math.log(max(d.score, 1e-300))  # r >= min_score: cand is p >= r * top
    return -math.inf


def rule_code(
    length: int, boxes: int, box_len: int, target: int, n_boxes: int, max_len: int, empty_ok: bool
) -> int:
    """What the caption rules allow next for one row (RowTable.codes is the same, vectorised).
    `length`: characters so far, markers included; `boxes`: closed boxes; `box_len`: characters
    in the open box; `target`: calibrated length of the open box (0: none). The length budget
    keeps room for every remaining box — one character plus its marker each (just the marker
    if empty boxes are allowed) — so `max_len` never empties a box."""
    r = n_boxes - boxes  # boxes still open, the current one included
    at_box_start = box_len == 0
    per_box = 1 if empty_ok else 2
    room_if_char = max_len - (length + 1) - (per_box * r - (0 if empty_ok else 1))
    if room_if_char < 0:  # one more character would leave too little room: close the box
        if not at_box_start or empty_ok or r * per_box > max_len - length:
            return FORCE_END
    elif at_box_start and not empty_ok:
        return FORBID_END
    if target:
        return FORBID_END if box_len < target else PREFER_END
    return FREE


def pick_rows(
    logp: np.ndarray,
    d: Decoding,
    u: np.ndarray,
    codes: np.ndarray,
    end_id: int,
    space_id: int = -1,
    word_start: np.ndarray | None = None,
    tilt: np.ndarray | None = None,
    letters: np.ndarray | None = None,
    after_letter: np.ndarray | None = None,
) -> np.ndarray:
    """Character ids [R] from log-probabilities [R,V] (disallowed ids at -inf), draws [R,2]
    and row codes [R]; `word_start` [R] (natural): whether the row's next character begins a
    word (None: every row does). `tilt` [R,V] (a server's taste, tilt.py): log-weights the
    draw among the candidates adds, once the method has chosen its candidates from the model's
    probabilities, so a taste reorders what the model finds plausible and never adds to it
    (greedy: added to the log-probabilities). A row of zeros picks as no tilt; None: none.
    `letters` [V] (natural with a tilt): which ids are word characters; `after_letter` [R]:
    whether the row's last character is one. Does not modify `logp`."""
    if d.method not in METHODS or d.method == "beam":
        raise ValueError(f"not a per-row picking method: {d.method!r}")
    # exp(tilt), its largest at 1 per row (a row of zeros stays ones: it picks as no tilt)
    boost = None if tilt is None else np.exp(tilt - tilt.max(axis=1, keepdims=True))
    lp = logp
    if (codes == FORBID_END).any():
        lp = logp.copy()
        lp[codes == FORBID_END, end_id] = -np.inf
    top = lp.max(axis=1, keepdims=True)  # [R,1]
    if d.method == "greedy":
        out = np.argmax(lp if tilt is None else lp + tilt, axis=1)
    elif d.method in THRESHOLD_FAMILY:
        # p >= r * top, in log space, with r ~ U[min_score, 1] per row.
        r = d.score + (1.0 - d.score) * u[:, :1]
        cand = lp >= top + np.log(r)  # [R,V]
        if d.method == "threshold-weighted":
            # The same candidates, picked in proportion to their probability.
            out = _inverse_cdf(_boosted(np.where(cand, np.exp(lp - top), 0.0), boost), u[:, 1])
        else:
            # The article's rule: one candidate uniformly (a tilted row: by its tilt).
            out = _uniform_pick(cand, u[:, 1])
            if tilt is not None and boost is not None:
                by_tilt = _inverse_cdf(np.where(cand, boost, 0.0), u[:, 1])
                out = np.where(np.asarray(tilt.any(axis=1)), by_tilt, out)
        if d.method == "calibrated":
            # Past its drawn length a box closes at the first word end the model finds
            # plausible: the marker is a candidate itself, or a space is and the marker keeps
            # at least END_FLOOR of the top probability (so "i want|" does not cut "i want you").
            close = cand[:, end_id]
            if space_id >= 0:
                close = close | (cand[:, space_id] & (lp[:, end_id] >= top[:, 0] + LOG_END_FLOOR))
            out = np.where((codes == PREFER_END) & close, end_id, out)
    elif d.method == "natural":
        p = np.exp((lp - top) / max(d.temperature, 1e-6))  # [R,V], unnormalised
        mass = np.full(len(p), d.start_top_p)
        if word_start is not None:
            mass = np.where(word_start, d.start_top_p, d.word_top_p)
        has_tilt = None
        if tilt is not None and boost is not None:
            # A tilted row's nucleus is taken on its tilted weights, among the characters the
            # model gives at least TILT_FLOOR of its top probability: a taste may bring in a
            # plausible `?` the nucleus left out, never the tail made-up words come from.
            # Inside a word a letter needs TILT_FLOOR_IN_WORD: a strong taste spelling its
            # favourite grams into the middle of a word is what makes words up (a `?` or a
            # space after one keeps the wider floor, so questions and word ends stay open).
            floor: float | np.ndarray = LOG_TILT_FLOOR
            if word_start is not None and letters is not None:
                floor = np.where(
                    ~word_start[:, None] & letters[None, :], LOG_TILT_FLOOR_IN_WORD, LOG_TILT_FLOOR
                )  # [R,V]
            tilted = np.where(lp >= top + floor, p * boost, 0.0)
            has_tilt = np.asarray(tilt.any(axis=1))
            p = np.where(has_tilt[:, None], tilted, p)
        cand = (p >= _nucleus_floor(p, mass)) & (p > 0)
        out = _inverse_cdf(np.where(cand, p, 0.0), u[:, 1])
        # Past its drawn length a box closes as calibrated closes it: at the first word end
        # the nucleus holds (the marker, or a space while the marker keeps END_FLOOR of top).
        close = cand[:, end_id]
        if space_id >= 0:
            close = close | (cand[:, space_id] & (lp[:, end_id] >= top[:, 0] + LOG_END_FLOOR))
        close = (codes == PREFER_END) & close
        if has_tilt is not None and letters is not None and after_letter is not None:
            # ... but a taste's mark may end the box's last word first (`why?`, `no!`): a
            # tilted row that drew a mark (no letter, space or end) right after a letter
            # writes it, and closes at the next step.
            mark = ~letters[out] & (out != space_id) & (out != end_id)
            close &= ~(has_tilt & after_letter & mark)
        out = np.where(close, end_id, out)
    else:
        p = np.exp((lp - top) / max(d.temperature, 1e-6))  # [R,V], unnormalised
        if d.method in ("top-k", "top-k-top-p") and d.top_k > 0:
            k = min(d.top_k, p.shape[1])
            kth = np.sort(p, axis=1)[:, -k, None]  # [R,1]: the k-th largest
            p = np.where(p >= kth, p, 0.0)
        if d.method in ("top-p", "top-k-top-p") and d.top_p < 1.0:
            p = np.where(p >= _nucleus_floor(p, np.full(len(p), d.top_p)), p, 0.0)
        out = _inverse_cdf(_boosted(p, boost), u[:, 1])
    return np.where(codes == FORCE_END, end_id, out).astype(np.int64)


def _uniform_pick(cand: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per row, the floor(u * count)-th of its candidates `cand` [R,V] (u [R] in [0, 1))."""
    count = cand.sum(axis=1)
    k = np.minimum((u * count).astype(np.int64), count - 1)
    # the k-th candidate of each row: flat positions of all candidates, row by row
    first = np.cumsum(count) - count
    return np.flatnonzero(cand)[first + k] - np.arange(len(cand)) * cand.shape[1]


def _boosted(weights: np.ndarray, boost: np.ndarray | None) -> np.ndarray:
    return weights if boost is None else weights * boost


def _nucleus_floor(p: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Per row, the smallest weight [R,1] of the smallest set of `p` [R,V] (non-negative)
    whose share of the row's total reaches `mass` [R]: p >= floor is that set."""
    desc = -np.sort(-p, axis=1)
    cum = np.cumsum(desc, axis=1) / desc.sum(axis=1, keepdims=True)
    last = np.minimum((cum < mass[:, None]).sum(axis=1), p.shape[1] - 1)  # last kept rank
    return np.take_along_axis(desc, last[:, None], axis=1)


def _inverse_cdf(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per row, an index drawn in proportion to non-negative `weights` [R,V] using u [R]."""
    cum = np.cumsum(weights, axis=1)
    idx = (cum <= (u * cum[:, -1])[:, None]).sum(axis=1)
    return np.minimum(idx, weights.shape[1] - 1)


def pick(logp: np.ndarray, d: Decoding, rng: np.random.Generator) -> int:
    """One character id from log-probabilities [V]: `pick_rows` for a single free row."""
    return int(pick_rows(logp[None], d, rng.random((1, 2)), np.array([FREE]), end_id=-1)[0])


def beam_floor(d: Decoding) -> float:
    """Beam candidates are the characters with p >= min_score * top, in log space."""
    return math.log(max(d.score, 1e-12))
