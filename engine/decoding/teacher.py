"""The model's own log-likelihood of given captions, teacher-forced through the decoding step.

Each caption `box|box|` is fed as decoding would have written it (BOS, then its characters,
with the index of the box each one is in), and the log-probability of every next character
is read off the step's output: the same numbers training's loss counts, from NumPy or the
compiled kernel, with no TensorFlow. Used to measure the generator's likelihood as a
baseline scorer (training/crowd.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.decoding.model import LoadedModel
from memebot.artifact.vocab import BOS, PAD
from memebot.caption_format import BOX_END


def caption_logprobs(
    model: LoadedModel, templates: Sequence[str], texts: Sequence[str], *, batch: int = 256
) -> np.ndarray:
    """Natural-log probability of each whole caption (`texts[i]` on `templates[i]`, an
    unknown slug on the generic slot), float64 [len(texts)]. Divide by `len(text)` for the
    per-character figure."""
    if len(templates) != len(texts):
        raise ValueError(f"{len(templates)} templates for {len(texts)} texts")
    out = np.zeros(len(texts))
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths together
    for lo in range(0, len(texts), batch):
        idx = order[lo : lo + batch]
        out[idx] = _batch_logprobs(model, [templates[i] for i in idx], [texts[i] for i in idx])
    return out


def _batch_logprobs(model: LoadedModel, templates: list[str], texts: list[str]) -> np.ndarray:
    B, T = len(texts), max((len(t) for t in texts), default=0)
    targets = np.full((B, T), PAD, dtype=np.int64)
    boxes = np.zeros((B, T), dtype=np.int64)
    for i, text in enumerate(texts):
        targets[i, : len(text)] = model.vocab.encode(text)
        ends = np.fromiter((c == BOX_END for c in text), dtype=np.int64, count=len(text))
        boxes[i, : len(text)] = np.cumsum(ends) - ends  # the box each target character is in
    conds = np.array([model.condition(model.templates.get(t)) for t in templates], np.int64)
    state = model.initial_state(B)
    fed = np.full(B, BOS, dtype=np.int64)
    total = np.zeros(B)
    rows = np.arange(B)
    for t in range(T):
        logp, state = model.step(state, fed, boxes[:, t], conds)
        live = targets[:, t] != PAD
        total[live] += np.asarray(logp, dtype=np.float64)[rows[live], targets[live, t]]
        fed = np.where(live, targets[:, t], fed)
    return total
