"""memebot/lengths.py: box lengths for templates without captions, borrowed from templates laid
out alike, on small tables and catalogs made here (the answer known by construction), and on
the shipped model's table with the shipped catalog as the engine serves it (engine/lengths.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.catalog import Catalog, Template
from engine.lengths import borrow_for_catalog
from engine.render import TextBox
from memebot.artifact.templates import GENERIC_SLOT, LENGTH_LEVELS, TemplateEntry, TemplateTable
from memebot.lengths import (
    MIN_TEMPLATES,
    BoxShape,
    Lengths,
    borrow_by_layout,
    borrowed_lengths,
    fit_ridge,
)
from memebot.lengths import quantile_mean as qmean

ROOT = Path(__file__).resolve().parent.parent
WIDE: list[BoxShape] = [(1.0, 0.2, True), (1.0, 0.2, True)]  # top and bottom lines
SMALL: list[BoxShape] = [(0.3, 0.1, False), (0.3, 0.1, False)]  # two labels


def flat(v: float) -> tuple[float, ...]:
    return tuple(float(v) for _ in LENGTH_LEVELS)


def spread(mean: float) -> tuple[float, ...]:
    """Quantiles of a uniform length over [mean / 2, 3 mean / 2]."""
    return tuple(mean / 2 + mean * x for x in LENGTH_LEVELS)


def two_kinds(n: int = 6) -> tuple[dict[str, Lengths], dict[str, list[BoxShape]]]:
    """n wide templates writing 30 a box and n small ones writing 10: the same-count mean
    says 20 for either kind."""
    own: dict[str, Lengths] = {}
    layouts: dict[str, list[BoxShape]] = {}
    for i in range(n):
        own[f"wide-{i}"], layouts[f"wide-{i}"] = (spread(30), spread(30)), WIDE
        own[f"small-{i}"], layouts[f"small-{i}"] = (spread(10), spread(10)), SMALL
    return own, layouts


def test_quantile_mean_is_the_mean_of_the_draw() -> None:
    assert qmean(flat(7)) == pytest.approx(7)
    assert qmean(spread(30)) == pytest.approx(30)


def test_a_template_without_lengths_borrows_from_templates_laid_out_alike() -> None:
    own, layouts = two_kinds()
    got = borrowed_lengths(own=own, layouts={**layouts, "new-small": SMALL, "new-wide": WIDE})
    assert set(got) == {"new-small", "new-wide"}  # only the ones without lengths
    for slug, real in (("new-small", 10), ("new-wide", 30)):
        assert len(got[slug]) == 2
        for q in got[slug]:
            assert qmean(q) == pytest.approx(real, rel=0.05)  # not the same-count 20
            assert list(q) == sorted(q)  # still quantiles: the same-count shape, scaled


def test_a_box_between_the_kinds_and_one_beyond_them() -> None:
    """One wide line over one small label: each box goes its own kind's way; a box smaller
    than any seen keeps within the box means the fit saw."""
    own, layouts = two_kinds()
    mixed: list[BoxShape] = [WIDE[0], SMALL[1]]
    tiny: list[BoxShape] = [(0.05, 0.05, False), (0.05, 0.05, False)]
    got = borrowed_lengths(own=own, layouts={**layouts, "mixed": mixed, "tiny": tiny})
    first, second = (qmean(q) for q in got["mixed"])
    assert first > 20 > second
    assert all(qmean(q) >= 10 - 0.1 for q in got["tiny"])  # clipped to the smallest mean seen


def test_the_same_inputs_give_the_same_lengths_in_any_order() -> None:
    own, layouts = two_kinds()
    layouts = {**layouts, "new": SMALL}
    once = borrowed_lengths(own=own, layouts=layouts)
    reordered = borrowed_lengths(
        own=dict(reversed(list(own.items()))), layouts=dict(reversed(list(layouts.items())))
    )
    assert once == reordered == borrowed_lengths(own=own, layouts=layouts)


def test_the_ridge_recovers_a_line_and_ignores_a_constant_feature() -> None:
    """y = 2 + 3 a - b exactly, a third feature the same on every row: with a negligible
    penalty the fit predicts new rows on the line, and the constant feature (spread 0) moves
    nothing; weights choose which rows the fit follows."""
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=40), rng.normal(size=40), np.full(40, 5.0)])
    y = 2 + 3 * x[:, 0] - x[:, 1]
    predict = fit_ridge(x, y, np.ones(40), ridge=1e-9)
    new = np.array([[1.0, 2.0, 5.0], [-1.0, 0.5, 99.0]])
    np.testing.assert_allclose(predict(new), [3.0, -1.5], atol=1e-6)
    # two groups disagreeing on the intercept: the weighted one wins
    xs = np.zeros((4, 1))
    weighted = fit_ridge(xs, np.array([0.0, 0.0, 10.0, 10.0]), np.array([9.0, 9.0, 1.0, 1.0]))
    assert weighted(np.zeros((1, 1)))[0] == pytest.approx(1.0)


def test_a_box_count_no_fitted_template_has() -> None:
    """Every template fitted on has 2 boxes; templates of 1, 3 and 5 boxes still borrow, one
    quantile row a box, each box its shape's way, within the box means the fit saw."""
    own, layouts = two_kinds()
    targets: dict[str, list[BoxShape]] = {
        "one-wide": WIDE[:1],
        "three-small": SMALL[:1] * 3,
        "five-wide": WIDE[:1] * 5,
        "wide-small-wide": [WIDE[0], SMALL[0], WIDE[1]],
    }
    got = borrowed_lengths(own=own, layouts={**layouts, **targets})
    assert set(got) == set(targets)
    for slug, layout in targets.items():
        assert len(got[slug]) == len(layout)
        for q, (w, _, _) in zip(got[slug], layout, strict=True):
            assert list(q) == sorted(q)
            assert 10 - 0.1 <= qmean(q) <= 30 + 0.1
            assert qmean(q) == pytest.approx(30 if w == 1.0 else 10, rel=0.05)


def test_too_few_templates_to_fit_on_borrow_nothing() -> None:
    own, layouts = two_kinds(n=(MIN_TEMPLATES - 1) // 2)
    assert len(own) < MIN_TEMPLATES
    assert borrowed_lengths(own=own, layouts={**layouts, "new": SMALL}) == {}
    # a template whose layout has another box count than its lengths is not fitted on
    own, layouts = two_kinds()
    layouts = {s: lay[:1] for s, lay in layouts.items()}
    assert borrowed_lengths(own=own, layouts={**layouts, "new": SMALL}) == {}


def _entry(slug: str, slot: int, lengths: Lengths) -> TemplateEntry:
    return TemplateEntry(slug, slug, None, (), len(lengths), slot, 100 * bool(slot), lengths)


def _template(slug: str, boxes: list[BoxShape]) -> Template:
    layout = tuple(
        TextBox(0.0, i / len(boxes), w, h, "upper" if up else "as-is")
        for i, (w, h, up) in enumerate(boxes)
    )
    return Template(slug, slug, None, (), len(boxes), None, None, layout)


def _lengths(table: TemplateTable, slug: str, n: int) -> list[tuple[float, ...]]:
    qs = table.length_quantiles(slug, n)
    assert qs is not None
    return qs


def test_the_catalog_lends_layouts_and_templates_with_captions_keep_theirs() -> None:
    own, layouts = two_kinds()
    filled = (spread(20), spread(20))  # what training fills in for a generic-slot template
    entries = [_entry(s, i + 1, q) for i, (s, q) in enumerate(sorted(own.items()))]
    table = TemplateTable([*entries, _entry("no-captions", GENERIC_SLOT, filled)])
    catalog = Catalog(
        [_template(s, layouts[s]) for s in own]
        + [_template("no-captions", SMALL), _template("not-in-the-model", WIDE)]
    )
    served = borrow_by_layout(table, catalog.templates)
    for s, q in own.items():  # their own, unchanged
        assert served.length_quantiles(s, 2) == list(q) == table.length_quantiles(s, 2)
    assert qmean(_lengths(served, "no-captions", 2)[0]) == pytest.approx(10, rel=0.05)
    assert qmean(_lengths(served, "not-in-the-model", 2)[0]) == pytest.approx(30, rel=0.05)
    # another box count than the catalog's: what it had (training's, or the same-count mean)
    assert served.length_quantiles("no-captions", 3) == table.length_quantiles("no-captions", 3)
    assert served.length_quantiles("no-captions", 3) == [filled[0], filled[1], filled[1]]
    assert served.to_json() == table.to_json()  # borrowed lengths are never saved
    assert table.borrowed == {}  # the table the model loaded is left as it was


def test_the_shipped_table_with_the_shipped_catalog() -> None:
    """The shipped model's templates without captions: the small boxes of Distracted
    Boyfriend's labels draw shorter than its wide ones, top-and-bottom templates stay near
    the 2-box figure, templates with captions keep their own."""
    table = TemplateTable.load(ROOT / "models" / "default" / "templates.json")
    catalog = Catalog.load()
    served = borrow_for_catalog(table, catalog)
    generic = {e.slug for e in table.entries if e.slot == GENERIC_SLOT}
    assert "distracted-boyfriend" in generic and set(served.borrowed) <= generic | {
        t.slug for t in catalog.templates if table.get(t.slug) is None
    }
    db = [qmean(q) for q in _lengths(served, "distracted-boyfriend", 3)]
    assert db[1] < min(db[0], db[2])  # the girlfriend's label, a sixth of the width
    before = table.length_quantiles("one-does-not-simply", 2)
    after = served.length_quantiles("one-does-not-simply", 2)
    assert before is not None and after is not None and before != after
    assert sum(map(qmean, after)) == pytest.approx(sum(map(qmean, before)), rel=0.10)
    for e in table.entries:
        if e.slot != GENERIC_SLOT:
            assert served.length_quantiles(e.slug, e.box_count) == list(e.box_lengths)
