"""Box lengths for templates with no captions of their own, borrowed from how long people
write in boxes of the same shape.

The model's template table holds box-length quantiles for the templates it has captions of
(training/templates.py); `calibrated` and `natural` draw each box's length from them. For a
template without captions (the generic slot) training fills in the quantiles of every caption
with its box count, whatever the layout: a template of small side-by-side labels drew the
lengths of full-width top and bottom lines. Here a ridge regression of a box's mean length
(log) on its shape — width and height as fractions of the image (log), the template's box
count, whether it is the first or last box, upper-case style — is fitted over the boxes of the
templates with captions (each template weighing one), and each box of a template without gets
the same-count mean's quantiles scaled to the predicted mean, kept within the range of box
means the fit saw. Physical intuition: the characters a box holds go with its area over the
font size, and people write to the room there is.

Leave-one-template-out on the shared data (bench/unseen_lengths.py), the share of templates
whose drawn mean caption length lands within ±10% of their real captions': 42% with
training's fallback, 56% with this; median |log ratio| 0.118 -> 0.094 (docs/ENGINE.md).

The engine fits it at model load (engine/service.py, load_engine_model) over its catalog's
layouts (engine/lengths.py), and a taste fit (retrain/taste_fit.py) over the same catalog's
(memebot/catalog_file.py) to measure a server's caption lengths against what the engine draws:
`borrow_by_layout`, here below both. Deterministic: a closed-form fit over sorted slugs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np

from memebot.artifact.templates import (
    GENERIC_SLOT,
    LENGTH_LEVELS,
    Quantiles,
    TemplateTable,
    mean_lengths,
)

Lengths = tuple[Quantiles, ...]
BoxShape = tuple[float, float, bool]  # width, height (fractions of the image), upper-case style

RIDGE = 1.0  # penalty on the standardised features (the intercept is not penalised)
# Fewer templates with lengths and a layout than this: no fit (7 coefficients), the
# same-count mean as before.
MIN_TEMPLATES = 10
_MIN_FRACTION = 0.05  # a box narrower or lower than this counts as this (log of ~0)


def quantile_mean(q: Quantiles) -> float:
    """Mean of the length drawn from `q` by inverse CDF, linear between LENGTH_LEVELS (as
    engine/decoding/rowtable.py draws)."""
    xs = np.asarray(LENGTH_LEVELS)
    return float(np.trapezoid(np.asarray(q, dtype=np.float64), xs) / (xs[-1] - xs[0]))


def box_features(layout: Sequence[BoxShape]) -> np.ndarray:
    """[boxes, 6]: log width, log height, box count, first box, last box, upper-case."""
    n = len(layout)
    return np.array(
        [
            [
                math.log(max(w, _MIN_FRACTION)),
                math.log(max(h, _MIN_FRACTION)),
                float(n),
                float(i == 0),
                float(i == n - 1),
                float(upper),
            ]
            for i, (w, h, upper) in enumerate(layout)
        ],
        dtype=np.float64,
    ).reshape(n, 6)


def fit_ridge(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, ridge: float = RIDGE
) -> Callable[[np.ndarray], np.ndarray]:
    """A weighted ridge regression of `y` on the columns of `x` ([rows, features]), the
    features standardised by their weighted mean and spread and the intercept not penalised:
    the prediction for new rows. Closed form: the same inputs give the same fit."""
    mu = np.average(x, axis=0, weights=weight)
    sd = np.sqrt(np.average((x - mu) ** 2, axis=0, weights=weight))
    sd[sd == 0] = 1.0  # a feature every row shares (all upper-case...) carries nothing
    z = np.column_stack([np.ones(len(x)), (x - mu) / sd])
    penalty = ridge * np.eye(z.shape[1])
    penalty[0, 0] = 0.0
    coef = np.linalg.solve(z.T @ (z * weight[:, None]) + penalty, z.T @ (y * weight))
    return lambda new: np.column_stack([np.ones(len(new)), (new - mu) / sd]) @ coef


def borrowed_lengths(
    *,
    own: Mapping[str, Lengths],
    layouts: Mapping[str, Sequence[BoxShape]],
    ridge: float = RIDGE,
    min_templates: int = MIN_TEMPLATES,
) -> dict[str, Lengths]:
    """Quantiles per box for every template of `layouts` that has no lengths in `own`, with
    as many boxes as its layout. Fitted on the templates with both lengths and a layout of as
    many boxes (slug order: the same inputs give the same fit); the same-count means come from
    all of `own` (mean_lengths, as TemplateTable's fallback takes them from all its entries).
    Empty when fewer than `min_templates` can be fitted on."""
    fit = sorted(s for s, q in own.items() if q and len(layouts.get(s, ())) == len(q))
    targets = sorted(s for s, lay in layouts.items() if lay and not own.get(s))
    if len(fit) < min_templates or not targets:
        return {}
    x = np.vstack([box_features(layouts[s]) for s in fit])
    y = np.log([max(quantile_mean(q), 1.0) for s in fit for q in own[s]])
    weight = np.concatenate([np.full(len(own[s]), 1.0 / len(own[s])) for s in fit])
    predict = fit_ridge(x, y, weight, ridge)
    lo, hi = math.exp(y.min()), math.exp(y.max())
    pool = [own[s] for s in sorted(own)]  # slug order: the same means whatever `own`'s order
    out: dict[str, Lengths] = {}
    for s in targets:
        layout = layouts[s]
        base = mean_lengths(pool, len(layout))
        if base is None:
            continue
        means = np.clip(np.exp(predict(box_features(layout))), lo, hi)
        out[s] = tuple(
            tuple(round(v * float(m) / max(quantile_mean(q), 1e-9), 1) for v in q)
            for q, m in zip(base, means, strict=True)
        )
    return out


class Laid(Protocol):
    """A catalog template as borrowing sees it: engine/catalog.py's Template, or
    memebot/catalog_file.py's CatalogLayout for a layer that may not import the engine."""

    @property
    def slug(self) -> str: ...

    @property
    def box_count(self) -> int: ...

    def shapes(self, n: int) -> list[BoxShape]:
        """The template's boxes for `n` texts."""
        ...


def borrow_by_layout(table: TemplateTable, templates: Iterable[Laid]) -> TemplateTable:
    """`table` with borrowed lengths for every template of `templates` (a catalog's) it has no
    captions of (no entry, or the generic slot), at the catalog's box count (a request for
    another box count keeps what it had). A template with a slot is fitted on with its layout
    for its own box count."""
    # a generic-slot template's lengths are training's same-count stand-in, not its own
    own = {e.slug: e.box_lengths for e in table.entries if e.box_lengths and e.slot != GENERIC_SLOT}
    layouts = {
        t.slug: t.shapes(len(own[t.slug]) if t.slug in own else t.box_count) for t in templates
    }
    return table.borrowing(borrowed_lengths(own=own, layouts=layouts))
