from __future__ import annotations

import pytest

from training.cleaning import clean_captions, lingua_english_scorer, normalise_box
from training.data import Caption


def always_english(texts):  # the language rule is tested on its own below
    return [1.0] * len(texts)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Hello   World ", "hello world"),
        ("TABS\tAND\nNEWLINES", "tabs and newlines"),
        ("", ""),
        ("MiXeD  case  ", "mixed case"),
    ],
)
def test_normalise_box(raw: str, expected: str) -> None:
    assert normalise_box(raw) == expected


@pytest.mark.parametrize(
    ("boxes", "rule"),
    [
        (("café au lait is great", "yes"), "non_ascii"),
        (("bell \x07 character here", "x"), "non_ascii"),
        (("left|right is a pipe", "bottom"), "pipe_in_box"),
        (("short",), "length"),  # "short|" is 6 chars
        (("a" * 82,), "length"),  # 83 with the marker
    ],
)
def test_each_rule_drops(boxes: tuple[str, ...], rule: str) -> None:
    kept, report = clean_captions([Caption("t", boxes)], english_scorer=always_english)
    assert kept == []
    assert report.dropped[rule] == 1
    assert report.kept == 0


def test_length_bounds_are_inclusive() -> None:
    caps = [Caption("t", ("a" * 9,)), Caption("t", ("b" * 81,)), Caption("t", ("c" * 8,))]
    kept, report = clean_captions(caps, english_scorer=always_english)
    assert [len(c.text) for c in kept] == [10, 82]
    assert report.dropped["length"] == 1


def test_duplicates_dropped_per_template_after_normalising() -> None:
    caps = [
        Caption("a", ("ONE  DOES NOT", "simply walk")),
        Caption("a", ("one does not ", "SIMPLY walk")),
        Caption("b", ("one does not", "simply walk")),
    ]
    kept, report = clean_captions(caps, english_scorer=always_english)
    assert [c.template for c in kept] == ["a", "b"]
    assert report.dropped["duplicate"] == 1
    assert kept[0].boxes == ("one does not", "simply walk")


def test_language_rule_uses_threshold() -> None:
    caps = [Caption("t", ("first caption here",)), Caption("t", ("second caption here",))]
    kept, report = clean_captions(caps, english_scorer=lambda texts: [0.9, 0.01])
    assert [c.boxes[0] for c in kept] == ["first caption here"]
    assert report.dropped["not_english"] == 1


def test_real_language_detector_separates_english() -> None:
    score = lingua_english_scorer()
    en, es, pl = score(
        [
            "when you finally finish your homework and the teacher says it was optional",
            "leer y escribir correctamente son importantes para la comunicación humana",
            "spierdolenie z lootem i pozniejsze obwinianie pijaqa ze to jego wina",
        ]
    )
    assert en > 0.5
    assert es < 0.05 and pl < 0.05


def test_report_table_lists_every_rule() -> None:
    _, report = clean_captions([Caption("t", ("x",))], english_scorer=always_english)
    table = report.table()
    for rule in ("non_ascii", "pipe_in_box", "length", "not_english", "duplicate", "kept", "total"):
        assert rule in table
