"""training/templates.py BoxLengths: a template's own box-length quantiles with captions
enough, training's fallback over every caption of the box count without, and the same from
the rows as from the captions (bench/unseen_lengths.py builds it from rows)."""

from __future__ import annotations

from training.data import Caption
from training.templates import MIN_LENGTH_SAMPLES, BoxLengths


def _captions(template: str, n: int, *lengths: int) -> list[Caption]:
    return [Caption(template, tuple("x" * (k + i % 3) for k in lengths)) for i in range(n)]


def test_own_quantiles_with_captions_enough_and_the_fallback_without() -> None:
    train = _captions("many", MIN_LENGTH_SAMPLES, 10, 20) + _captions("few", 3, 50, 60)
    lengths = BoxLengths(train)
    own = lengths.quantiles("many", 2)
    assert own[0][0] == 10 and own[0][-1] == 12 and own[1][0] == 20
    pooled = lengths.fallback(2)  # every 2-box caption: "few"'s long boxes in the top tail
    assert lengths.quantiles("few", 2) == pooled == lengths.quantiles("unknown", 2)
    assert pooled[0][0] == 10 and pooled[0][-1] == 52
    # no 3-box captions: the nearest count with captions enough, its last box repeated
    assert lengths.fallback(3) == (*pooled, pooled[1])
    assert BoxLengths().fallback(2) == () == BoxLengths(train[:3]).quantiles("many", 2)


def test_from_rows_is_the_same_as_from_the_captions() -> None:
    train = _captions("a", 25, 10, 20) + _captions("b", 5, 7) + _captions("c", 30, 40)
    lengths = BoxLengths(train)
    again = BoxLengths.from_rows(lengths.by_template)
    assert again.by_template == lengths.by_template
    assert {k: sorted(v) for k, v in again.by_count.items()} == {
        k: sorted(v) for k, v in lengths.by_count.items()
    }
    for slug, boxes in [("a", 2), ("b", 1), ("c", 1), ("d", 2)]:
        assert again.quantiles(slug, boxes) == lengths.quantiles(slug, boxes)
