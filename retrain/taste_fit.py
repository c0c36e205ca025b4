"""Fitting a server's taste on its curated rows, and the gate a new taste must pass.

The fit is L2-regularised logistic regression (the penalty shrinking as the server's
votes grow, down to a floor: L2_ROWS, L2_FLOOR) over the hashed n-grams (memebot/ngrams.py, in
TASTE_BUCKETS buckets), by Nesterov-accelerated gradient descent in NumPy: each step is two
passes over the sparse rows, and a server's few hundred or thousand rows take well under a
second on one core. No TensorFlow, no scikit-learn: a taste run is cheap enough to run on the
bot's machine.

The gate: a new taste is promoted only if its held-out AUC (how well it ranks the server's
held-out liked memes over its held-out disliked ones) is strictly better than that of what
serves the server now, on the same held-out rows: the server's current taste, or, when it has
none, the default taste (the crowd's scorer, or chance, 0.5, without one), and better than
chance in any case. Otherwise the numbers are reported and nothing changes.

The length factor: a taste also says how long the server likes its captions, which the
per-character tilt of decoding cannot (engine/decoding/tilt.py; length-targeted styles draw
each box's length from the template's real ones). Its raw value is the geometric mean, over the
liked training memes, of the caption's length over the template's typical length (the sum of
its boxes' median lengths as the engine draws them: the base model's template table, with the
lengths borrowed by layout for templates without captions); it is then shrunk towards 1 by how
well length, in that direction, ranks the held-out memes (the factor's own gate: to the power
(AUC - 0.5) / LENGTH_AUC_SPAN, capped at 1: none at AUC <= 0.5, all of it from 0.75), and
bounded to LENGTH_FACTOR_BOUNDS. A server that does not care about length gets ~1: its
captions keep people's lengths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from memebot.artifact.templates import LENGTH_LEVELS, TemplateTable
from memebot.lengths import Laid, borrow_by_layout
from memebot.ngrams import hash_features
from memebot.taste_file import TASTE_BUCKETS, TasteScorer
from retrain.taste_curation import TasteCurated, TasteRow

# The L2 penalty on the weight-averaged log-loss (the rows have norm ~1) is L2_ROWS / (training
# rows), never below L2_FLOOR: a penalty on the summed loss, as a prior is, so a taste trusts
# its n-grams more as its server's votes grow (3e-3 at 100 rows, the first retrain of a server
# that rated 130 memes; the floor from 200). Over five seeds of bench/communities.py this
# lifted the servers' share ratios (geometric mean x2.40 -> x2.73, worst x1.38 -> x1.76) for
# made-up words 2.0% -> 2.5% of the tilted servers' words (real captions: 2.8%); without the
# floor (1e-3 at 300 rows) they rose to 3.6%, and a fixed 1e-3 from the first retrain to 3.9%.
L2_ROWS = 0.3
L2_FLOOR = 1.5e-3
STEPS = 300
LENGTH_FACTOR_BOUNDS = (0.4, 1.6)  # a caption of at least ~2/5 of people's length, at most 8/5
# A held-out length AUC of 0.5 + this keeps the whole factor; 0.5 keeps none, between: a power.
LENGTH_AUC_SPAN = 0.25
# (template slug, boxes) -> the typical length of its captions in characters (None: unknown)
TypicalLength = Callable[[str, int], float | None]


class TextScorer(Protocol):
    def score(self, texts: Sequence[str], template: str = "") -> np.ndarray: ...


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of `scores` for label > 0 over label <= 0, ties counted half (Mann-Whitney U
    from average ranks). NaN when one side is empty."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(labels) > 0
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if not n1 or not n0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # Average rank of each run of equal scores.
    starts = np.flatnonzero(np.concatenate([[True], sorted_s[1:] != sorted_s[:-1]]))
    ends = np.concatenate([starts[1:], [len(s)]])
    avg = (starts + ends + 1) / 2.0  # ranks are 1-based
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def heldout_auc(scorer: TextScorer, rows: Sequence[TasteRow]) -> float:
    """The scorer's AUC on rows, each scored with its own template (one call per template)."""
    if not rows:
        return float("nan")
    scores = np.zeros(len(rows), dtype=np.float64)
    by_template: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_template.setdefault(r.template, []).append(i)
    for template, idx in by_template.items():
        scores[idx] = scorer.score([rows[i].text for i in idx], template)
    return auc(scores, np.array([r.label for r in rows]))


def fit_logistic(
    texts: Sequence[str],
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    n_buckets: int = TASTE_BUCKETS,
    l2: float = 3e-3,  # fit_taste passes a taste's own (L2_ROWS / rows)
    steps: int = STEPS,
) -> tuple[np.ndarray, float]:
    """Minimises the weighted mean log-loss + l2/2 |w|^2 (the bias unpenalised): (weights
    float32 [n_buckets], bias). Deterministic: same rows, same result."""
    x = hash_features(texts, n_buckets)
    y = (np.asarray(labels) > 0).astype(np.float64)
    c = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    c = c / c.sum()
    rows = x.row_ids()
    vals = x.values.astype(np.float64)
    # Step size 1/L, L the gradient's Lipschitz bound: 1/4 max row |x|^2 (+1 for the bias
    # column) + l2. Repeats of a bucket in a row add up before squaring.
    key = rows.astype(np.int64) * n_buckets + x.indices
    uniq, inv = np.unique(key, return_inverse=True)
    summed = np.bincount(inv, weights=vals, minlength=len(uniq))
    sq = np.bincount(uniq // n_buckets, weights=summed**2, minlength=x.rows)
    step = 1.0 / (0.25 * (float(sq.max(initial=0.0)) + 1.0) + l2)
    p0 = float(np.clip((c * y).sum(), 1e-3, 1 - 1e-3))
    w, b = np.zeros(n_buckets), np.log(p0 / (1 - p0))
    w_prev, b_prev = w.copy(), b
    for t in range(1, steps + 1):
        m = (t - 1) / (t + 2)  # Nesterov momentum
        vw, vb = w + m * (w - w_prev), b + m * (b - b_prev)
        z = np.bincount(rows, weights=vals * vw[x.indices], minlength=x.rows) + vb
        r = c * (1.0 / (1.0 + np.exp(-z)) - y)  # d loss / d z
        gw = np.bincount(x.indices, weights=vals * r[rows], minlength=n_buckets) + l2 * vw
        w_prev, b_prev = w, b
        w, b = vw - step * gw, vb - step * float(r.sum())
    return w.astype(np.float32), float(b)


def _log_ratios(rows: Sequence[TasteRow], typical: TypicalLength) -> tuple[np.ndarray, np.ndarray]:
    """log(caption length / typical length) of the rows whose template has one, and which."""
    out, keep = [], []
    for i, r in enumerate(rows):
        t = typical(r.template, len(r.boxes))
        if t and t > 0:
            out.append(np.log(max(sum(len(b) for b in r.boxes), 1) / t))
            keep.append(i)
    return np.asarray(out, dtype=np.float64), np.asarray(keep, dtype=np.int64)


def fit_length_factor(
    curated: TasteCurated, typical: TypicalLength | None
) -> tuple[float, dict[str, float]]:
    """The server's length factor (module docstring) and how it was found."""
    if typical is None:
        return 1.0, {}
    lr, keep = _log_ratios(curated.train, typical)
    liked = np.array([curated.train[i].label > 0 for i in keep], dtype=bool)
    if not liked.any():
        return 1.0, {}
    w = np.array([curated.train[i].weight for i in keep], dtype=np.float64)[liked]
    raw = float(np.exp(np.average(lr[liked], weights=np.maximum(w, 1e-9))))
    h_lr, h_keep = _log_ratios(curated.heldout, typical)
    labels = np.array([curated.heldout[i].label for i in h_keep])
    direction = 1.0 if raw >= 1.0 else -1.0
    len_auc = auc(direction * h_lr, labels) if len(h_lr) else float("nan")
    power = 0.0 if np.isnan(len_auc) else float(np.clip((len_auc - 0.5) / LENGTH_AUC_SPAN, 0, 1))
    lo, hi = LENGTH_FACTOR_BOUNDS
    factor = float(np.clip(raw**power, lo, hi))
    return factor, {"length_raw": raw, "length_heldout_auc": len_auc, "length_factor": factor}


def fit_taste(
    curated: TasteCurated,
    *,
    base_version: str,
    l2: float | None = None,
    steps: int = STEPS,
    typical: TypicalLength | None = None,
) -> TasteScorer:
    """A taste fitted on the curated training rows (held-out rows are never fitted on), each
    weighted by its capped net vote, with the penalty `l2` (default: L2_ROWS / rows, at least
    L2_FLOOR); with `typical` (the base model's typical caption lengths), its length factor
    too (1 without)."""
    rows = curated.train
    if not rows:
        raise ValueError("no training rows to fit a taste on")
    if l2 is None:
        l2 = max(L2_FLOOR, L2_ROWS / len(rows))
    w, b = fit_logistic(
        [r.text for r in rows],
        np.array([r.label for r in rows]),
        np.array([r.weight for r in rows], dtype=np.float64),
        l2=l2,
        steps=steps,
    )
    factor, length_metrics = fit_length_factor(curated, typical)
    return TasteScorer(
        w,
        b,
        guild_id=curated.guild_id,
        base_version=base_version,
        n_votes=curated.n_votes,
        metrics={"train_rows": len(rows), "heldout_rows": len(curated.heldout), "l2": l2}
        | length_metrics,
        length_factor=factor,
    )


def typical_lengths(table: TemplateTable, catalog: Iterable[Laid]) -> TypicalLength:
    """Typical caption lengths from a model's template table as the engine draws them over
    `catalog` (its layouts, memebot/catalog_file.py): its boxes' median lengths, borrowed by
    layout for the templates without captions (memebot/lengths.py, as engine/lengths.py)."""
    table = borrow_by_layout(table, catalog)
    mid = LENGTH_LEVELS.index(0.5)

    def typical(template: str, n_boxes: int) -> float | None:
        qs = table.length_quantiles(template, n_boxes)
        return None if not qs else float(sum(q[mid] for q in qs))

    return typical


@dataclass(frozen=True)
class TasteGate:
    """The gate's numbers: the candidate's held-out AUC and that of what serves now."""

    candidate_auc: float
    baseline_auc: float
    baseline: str  # "taste v3", "crowd", "chance"
    heldout_rows: int

    @property
    def promoted(self) -> bool:
        # NaN (no held-out pair) never passes; nor does a taste that ranks the server's
        # held-out memes no better than chance, whatever serves now (a crowd scorer or an old
        # taste can rank a small server's memes below chance: beating it is no taste).
        return bool(self.candidate_auc > max(self.baseline_auc, 0.5))

    def summary(self) -> str:
        verdict = "promoted" if self.promoted else "kept the current taste"
        return (
            f"held-out AUC {self.candidate_auc:.3f} vs {self.baseline_auc:.3f} ({self.baseline})"
            f" on {self.heldout_rows} held-out memes: {verdict}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "candidate_auc": self.candidate_auc,
            "baseline_auc": self.baseline_auc,
            "baseline": self.baseline,
            "heldout_rows": self.heldout_rows,
            "promoted": self.promoted,
        }


def gate_taste(
    candidate: TextScorer,
    heldout: Sequence[TasteRow],
    *,
    current: TasteScorer | None = None,
    default: TextScorer | None = None,
) -> TasteGate:
    """Judges `candidate` against the server's `current` taste, or when it has none the
    `default` (the crowd's scorer), or chance (0.5) without either."""
    if current is not None:
        name, base = f"taste v{current.version}", heldout_auc(current, heldout)
    elif default is not None:
        name, base = "crowd", heldout_auc(default, heldout)
    else:
        name, base = "chance", 0.5
    if np.isnan(base):
        base = 0.5
    return TasteGate(heldout_auc(candidate, heldout), float(base), name, len(heldout))
