"""Caption sampling shared by the training callback, `memebot generate` and the engine.

Pickers choose the next character from one row of log-probabilities; `sample_captions`
runs a batch of captions in lockstep on any `LoadedModel` and enforces the caption rules:
exactly `n_boxes` boxes, no empty box unless allowed, every box closed within `max_len`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from training.cleaning import MAX_CHARS
from training.data import BOX_END
from training.runtime import LoadedModel
from training.vocab import BOS, N_SPECIAL


@dataclass(frozen=True)
class Decoding:
    method: str = "threshold"  # threshold | greedy | temperature | top-k | top-p | top-k-top-p
    min_score: float = 0.1  # threshold: r ~ U[min_score, 1]; candidates p >= r * top
    temperature: float = 1.0  # temperature/top-k/top-p: reweight probabilities by 1/T
    top_k: int = 0  # top-k: keep the k most likely characters (0 = off)
    top_p: float = 1.0  # top-p: keep the smallest set whose mass reaches p


METHODS = ("threshold", "greedy", "temperature", "top-k", "top-p", "top-k-top-p")


def pick(logp: np.ndarray, d: Decoding, rng: np.random.Generator) -> int:
    """One character id from log-probabilities [V] (disallowed ids already at -inf)."""
    if d.method == "greedy":
        return int(np.argmax(logp))
    p = np.exp(logp - logp.max())
    if d.method == "threshold":
        r = rng.uniform(d.min_score, 1.0)
        cands = np.flatnonzero(p >= r * p.max())
        return int(rng.choice(cands))
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
    return int(rng.choice(p.size, p=p))


@dataclass
class Sampled:
    boxes: list[str]
    logprob: float  # natural log of the caption's probability under the model (generated part)
    template: str = ""
    chars: list[int] = field(default_factory=list, repr=False)

    @property
    def text(self) -> str:
        return "".join(b + BOX_END for b in self.boxes)


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
    """One caption per entry of `templates` (slugs; unknown ones use the generic slot)."""
    rng = np.random.default_rng(seed)
    entries = [model.templates.get(t) for t in templates]
    counts = list(n_boxes) if n_boxes is not None else [e.box_count if e else 2 for e in entries]
    B = len(templates)
    conds = np.array([model.condition(e) for e in entries], dtype=np.int64)
    vocab = model.vocab
    end_id = vocab.box_end_id
    texts = [start] * B
    logprob = [0.0] * B
    boxes = np.full(B, start.count(BOX_END), dtype=np.int64)
    done = boxes >= np.array(counts)
    state = model.initial_state(B)
    # Teacher-force BOS + the start text. A char is fed with the box index of the *next*
    # target, i.e. the count of markers up to and including it (as in training).
    logp, state = model.step(state, np.full(B, BOS), np.zeros(B, dtype=np.int64), conds)
    for i, cid in enumerate(vocab.encode(start).tolist()):
        box_idx = np.full(B, start[: i + 1].count(BOX_END))
        logp, state = model.step(state, np.full(B, cid), box_idx, conds)
    while not done.all():
        allowed = logp.copy()
        allowed[:, :N_SPECIAL] = -np.inf
        next_ids = np.full(B, BOS)
        for b in range(B):
            if done[b]:
                continue
            t = texts[b]
            box_start = t == "" or t.endswith(BOX_END)
            remaining = counts[b] - int(boxes[b])
            row = allowed[b]
            if len(t) + remaining >= max_len:
                row = np.full_like(row, -np.inf)
                row[end_id] = 0.0  # budget left only for closing the boxes
            elif box_start and not allow_empty_boxes:
                row[end_id] = -np.inf
            c = pick(row, decoding, rng)
            logprob[b] += float(logp[b, c]) if math.isfinite(logp[b, c]) else -1e9
            texts[b] = t + vocab.decode([c])
            if c == end_id:
                boxes[b] += 1
                done[b] = boxes[b] >= counts[b]
            next_ids[b] = c
        if done.all():
            break
        box_idx = np.array([t.count(BOX_END) for t in texts])
        logp, state = model.step(state, next_ids, box_idx, conds)
    out = []
    for b in range(B):
        parts = texts[b].split(BOX_END)[: counts[b]]
        out.append(Sampled(boxes=parts, logprob=logprob[b], template=templates[b]))
    return out
