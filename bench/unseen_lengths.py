"""Box lengths for templates with no captions: leave-one-template-out predictors.

A template the model has no captions of draws its box lengths (`calibrated`, `natural`) from
quantiles it has to borrow. For every template with lengths of its own (the table training
builds, training/templates.py: cleaned training captions with the template's most common box
count), its lengths are hidden and predicted from the other templates' alone, and the mean
total length the prediction draws (box means + one marker a box, as bench/caption_stats.py
counts) is set beside the mean of the template's real captions of that box count (all splits).

Predictors:
- `pooled (today)`: what such a template holds today, training's fallback (the quantiles over
  every training caption with as many boxes, training/templates.py);
- `same-count`: TemplateTable.length_quantiles's fallback (the mean quantiles over the
  templates with as many boxes, each template weighing one);
- `knn-K`: the mean quantiles of the K templates nearest by layout (engine/catalog.json: each
  box's width, height and position; same box count; ties at the K-th distance all count);
- `ridge-geometry`: what the engine does (memebot/lengths.py): per box, log mean length ~ box
  shape (log width, log height, box count, first/last box, upper-case), the same-count
  quantiles scaled to the prediction;
- `ridge-name`, `ridge-example`: the template's log mean total ~ its name (characters, words,
  whether it reads as a phrase people write, engine/decoding/unseen.phrase_of) or memegen's
  example caption length, the same-count quantiles scaled to it;
- `own`: the template's own quantiles (what the drawn mean is with its own data).

Per predictor: the share of templates whose predicted mean total is within ±10% of the real
one, the median |log ratio|, and the ratio for the named templates (y-u-no,
that-would-be-great).

    python bench/unseen_lengths.py [--json] [--layouts ../shared/data/memegen-layouts]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from memebot.artifact.templates import Quantiles, TemplateEntry, TemplateTable, mean_lengths
from memebot.lengths import fit_ridge, quantile_mean

NAMED = ("y-u-no", "that-would-be-great")
TOLERANCE = 0.10  # within ±10% of the real mean
Lengths = tuple[Quantiles, ...]
Box = tuple[float, float, float, float, bool]  # x, y, w, h, upper-case style


@dataclass(frozen=True)
class Known:
    """A template with lengths of its own, and what could stand in for them."""

    slug: str
    name: str
    box_count: int
    lengths: Lengths  # the table's quantiles (training's)
    real_mean: float  # mean caption length, markers included, of its captions of box_count
    boxes: tuple[Box, ...]  # its catalog layout for box_count boxes
    example_chars: float  # memegen's example caption, markers included (NaN: no layout)
    # its training captions' box lengths by box count (training/templates.py's rows)
    rows: Mapping[int, Sequence[list[int]]] = field(default_factory=dict)


def drawn_total(lengths: Sequence[Quantiles]) -> float:
    """Mean drawn caption length: box means plus one end-of-box marker each."""
    return sum(quantile_mean(q) for q in lengths) + len(lengths)


def scaled(lengths: Sequence[Quantiles], factors: Sequence[float]) -> Lengths:
    return tuple(tuple(v * f for v in q) for q, f in zip(lengths, factors, strict=True))


# --- predictors: (target, the other templates) -> lengths for target.box_count boxes ---


def pooled(t: Known, pool: Sequence[Known]) -> Lengths:
    """Today's lengths for a template without captions: training's fallback, the quantiles
    over every training caption of `pool` with as many boxes (training/templates.py, what a
    model trained with --exclude-templates holds for the template)."""
    from training.templates import BoxLengths

    lengths = BoxLengths.from_rows({(p.slug, k): rows for p in pool for k, rows in p.rows.items()})
    return lengths.fallback(t.box_count)


def same_count(t: Known, pool: Sequence[Known]) -> Lengths:
    """TemplateTable's fallback over `pool`: the mean quantiles over the templates with as
    many boxes (a template-weighted mean, where `pooled` weighs captions)."""
    table = TemplateTable(_entry(k) for k in pool)
    qs = table.length_quantiles(t.slug, t.box_count)
    assert qs is not None
    return tuple(qs)


def _entry(k: Known) -> TemplateEntry:
    return TemplateEntry(k.slug, k.name, None, (), k.box_count, 1, 1, k.lengths)


def layout_distance(a: Sequence[Box], b: Sequence[Box]) -> float:
    """Euclidean distance between two layouts of the same box count: per box its width,
    height and centre (fractions of the image)."""
    return math.sqrt(
        sum(
            (p - q) ** 2
            for ba, bb in zip(a, b, strict=True)
            for p, q in zip(_box_features(ba), _box_features(bb), strict=True)
        )
    )


def _box_features(b: Box) -> tuple[float, float, float, float]:
    x, y, w, h, _ = b
    return (w, h, x + w / 2, y + h / 2)


def knn(k: int) -> Callable[[Known, Sequence[Known]], Lengths]:
    def predict(t: Known, pool: Sequence[Known]) -> Lengths:
        same = [p for p in pool if p.box_count == t.box_count]
        if not same:
            return same_count(t, pool)
        dist = sorted((layout_distance(t.boxes, p.boxes), p.slug, p) for p in same)
        cut = dist[min(k, len(dist)) - 1][0] + 1e-9  # every template tied with the k-th
        near = [p.lengths for d, _, p in dist if d <= cut]
        got = mean_lengths(near, t.box_count)  # all of t.box_count boxes: their plain mean
        assert got is not None
        return got

    return predict


def ridge_geometry(t: Known, pool: Sequence[Known]) -> Lengths:
    """What the engine borrows (memebot/lengths.py) for `t` from `pool`."""
    from memebot.lengths import borrowed_lengths

    layouts = {k.slug: [(b[2], b[3], b[4]) for b in k.boxes] for k in (*pool, t)}
    got = borrowed_lengths(own={k.slug: k.lengths for k in pool}, layouts=layouts)
    return got[t.slug] if t.slug in got else same_count(t, pool)


def _name_row(t: Known) -> list[float]:
    from engine.decoding.unseen import phrase_of

    words = re.findall(r"[a-z0-9']+", t.name.lower())
    return [float(len(t.name)), float(len(words)), float(phrase_of(t.name) is not None)]


def _template_ridge(
    feature: Callable[[Known], list[float]],
) -> Callable[[Known, Sequence[Known]], Lengths]:
    """log mean total ~ `feature`, per box count as a feature too; same-count shape scaled."""

    def predict(t: Known, pool: Sequence[Known]) -> Lengths:
        use = [p for p in pool if all(math.isfinite(v) for v in feature(p))]
        if not all(math.isfinite(v) for v in feature(t)) or len(use) < 5:
            return same_count(t, pool)
        x = np.array([[*feature(p), float(p.box_count)] for p in use])
        y = np.array([math.log(drawn_total(p.lengths)) for p in use])
        f = fit_ridge(x, y, np.ones(len(use)))  # the engine's ridge (same penalty)
        total = float(np.exp(f(np.array([[*feature(t), float(t.box_count)]]))[0]))
        base = same_count(t, pool)
        factor = (total - t.box_count) / max(drawn_total(base) - t.box_count, 1e-9)
        return scaled(base, [factor] * t.box_count)

    return predict


PREDICTORS: dict[str, Callable[[Known, Sequence[Known]], Lengths]] = {
    "pooled (today)": pooled,
    "same-count": same_count,
    "knn-3": knn(3),
    "knn-5": knn(5),
    "knn-10": knn(10),
    "ridge-geometry": ridge_geometry,
    "ridge-name": _template_ridge(_name_row),
    "ridge-example": _template_ridge(lambda t: [t.example_chars]),
    "own": lambda t, pool: t.lengths,
}


def evaluate(
    known: Sequence[Known], predictors: Mapping[str, Callable[[Known, Sequence[Known]], Lengths]]
) -> dict[str, Any]:
    """Leave-one-template-out: per predictor, each template's predicted / real mean total."""
    out: dict[str, Any] = {}
    for name, predict in predictors.items():
        ratios = {}
        for t in known:
            pool = [p for p in known if p.slug != t.slug]
            ratios[t.slug] = drawn_total(predict(t, pool)) / t.real_mean
        logs = [abs(math.log(r)) for r in ratios.values()]
        out[name] = {
            "within_10pct": sum(abs(r - 1) <= TOLERANCE for r in ratios.values()) / len(ratios),
            "median_abs_log_ratio": statistics.median(logs),
            "mean_abs_log_ratio": statistics.mean(logs),
            "named": {s: ratios[s] for s in NAMED if s in ratios},
            "ratios": ratios,
        }
    return out


# --- reading the data ---


def known_templates(prepared: Any, catalog: Any, layouts: Path | None) -> list[Known]:
    """Every catalog template with lengths of its own in the table training builds from
    `prepared` (MIN_LENGTH_SAMPLES training captions of its box count or more)."""
    from training.templates import MIN_LENGTH_SAMPLES, BoxLengths

    table = prepared.build_templates()
    rows = BoxLengths(prepared.captions("train")).by_template
    every: dict[str, list[int]] = {}
    for c in prepared.captions("all"):
        e = table.get(c.template)
        if e is not None and e.box_lengths and len(c.boxes) == e.box_count:
            every.setdefault(c.template, []).append(sum(len(b) + 1 for b in c.boxes))
    examples = _examples(layouts) if layouts else {}
    out = []
    for e in table.entries:
        if len(rows.get((e.slug, e.box_count), ())) < MIN_LENGTH_SAMPLES or e.slug not in every:
            continue
        tpl = catalog.get(e.slug)
        if tpl is None:
            continue
        boxes = tuple((b.x, b.y, b.w, b.h, b.style == "upper") for b in tpl.layout(e.box_count))
        out.append(
            Known(
                slug=e.slug,
                name=e.name,
                box_count=e.box_count,
                lengths=e.box_lengths,
                real_mean=statistics.mean(every[e.slug]),
                boxes=boxes,
                example_chars=examples.get(e.slug, float("nan")),
                rows={k: r for (slug, k), r in rows.items() if slug == e.slug},
            )
        )
    return out


def _examples(layouts: Path) -> dict[str, float]:
    """memegen's example caption length (markers included) per catalog template."""
    import yaml

    from engine.catalog import CATALOG_PATH

    catalog = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    out = {}
    for t in catalog["templates"]:
        src = str(t.get("layout_source", ""))
        if not src.startswith("memegen:"):
            continue
        path = layouts / f"{src.split(':', 1)[1]}.yml"
        if not path.is_file():
            continue
        ex = yaml.safe_load(path.read_text(encoding="utf-8")).get("example") or []
        out[t["slug"]] = float(sum(len(str(b)) + 1 for b in ex))
    return out


def table(r: Mapping[str, Any], templates: int, box_counts: Mapping[int, int]) -> str:
    counts = ", ".join(f"{n} of {k} box{'es' * (k > 1)}" for k, n in sorted(box_counts.items()))
    lines = [
        f"leave-one-template-out over {templates} templates with lengths ({counts})",
        "",
        "| predictor | within ±10% | median abs log ratio | " + " | ".join(NAMED) + " |",
        "|---|---|---|" + "---|" * len(NAMED),
    ]
    for name, s in r.items():
        named = " | ".join(f"{s['named'][n]:.2f}" if n in s["named"] else "-" for n in NAMED)
        lines.append(
            f"| {name} | {s['within_10pct']:.0%} | {s['median_abs_log_ratio']:.3f} | {named} |"
        )
    return "\n".join(lines)


def main() -> int:
    from engine.catalog import Catalog
    from memebot.settings import Settings
    from training.prepare import prepare

    settings = Settings.from_env()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--layouts",
        type=Path,
        default=settings.data_dir.parent / "memegen-layouts",
        help="memegen layouts (example captions); missing: ridge-example falls back",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    prepared = prepare(settings.data_dir, cache_dir=settings.cache_dir)
    layouts = args.layouts if args.layouts.is_dir() else None
    known = known_templates(prepared, Catalog.load(), layouts)
    r = evaluate(known, PREDICTORS)
    counts = Counter(k.box_count for k in known)
    if args.json:
        print(json.dumps({"templates": len(known), "box_counts": counts, "predictors": r}))
    else:
        print(table(r, len(known), counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
