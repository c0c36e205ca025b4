"""bench/caption_stats.py's metrics on small hand-made captions."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from bench.caption_stats import (
    caption_length,
    distinct2,
    length_ratios,
    oov_share,
    pairs,
    word_counts,
    words,
    worst,
)


def test_words_split_on_punctuation_and_keep_apostrophes() -> None:
    assert words("ain't nobody, got time!") == ["ain't", "nobody", "got", "time"]
    assert words("  ") == []


def test_pairs_stay_within_a_box() -> None:
    assert pairs(["a b", "c d"]) == [("a", "b"), ("c", "d")]  # never ("b", "c")


def test_distinct2_pools_every_caption() -> None:
    same = [("when you see",), ("when you see",)]
    assert distinct2(same) == pytest.approx(2 / 4)
    varied = [("when you see",), ("me and my",)]
    assert distinct2(varied) == 1.0
    assert math.isnan(distinct2([("one",), ("two",)]))  # no pair at all


def test_oov_share_counts_rare_words() -> None:
    counts = word_counts([("the cat", "the dog")] * 3 + [("zebra",)])
    assert counts == Counter({"the": 6, "cat": 3, "dog": 3, "zebra": 1})
    # zebra (seen once) and verizo (never) are made up; the, cat are not
    assert oov_share([("the zebra", "cat verizo")], counts) == pytest.approx(2 / 4)
    assert oov_share([("the zebra",)], counts, min_count=1) == 0.0


def test_length_ratios_and_worst() -> None:
    assert caption_length(("ab", "c")) == 5  # "ab|c|"
    real = {"a": [("abcd",)], "b": [("ab",), ("abcdef",)]}  # means 5 and 5
    gen = {"a": [("abcdefghi",)], "b": [("abc",)]}  # 10 and 4
    ratios = length_ratios(gen, real)
    assert ratios == pytest.approx({"a": 2.0, "b": 0.8})
    assert worst(ratios) == ("a", 2.0)


def test_compare_counts_pairs_over_the_sample_and_lengths_over_all() -> None:
    from bench.caption_stats import Reference, compare

    # 4 distinct pairs of 4; 16 and 14 characters, markers included
    real: list[tuple[str, ...]] = [("when you see", "it"), ("me and my", "dog")]
    ref = Reference({"t": 2}, {"t": real}, {"t": real}, word_counts(real * 3))
    # the first two repeat the real ones; the third (lengths only) is far longer
    gen = {"t": [real[0], real[0], ("x" * 40, "y" * 40)]}
    got = compare(gen, ref, sample=2)
    assert got["distinct2_ratio"] == pytest.approx(0.5)  # 2 distinct of 4 pairs
    assert math.isnan(got["oov_ratio"])  # real captions have no made-up word: no ratio
    assert got["captions"] == 2 and got["length_captions"] == 3
    assert got["length_ratio_worst"] == pytest.approx((16 + 16 + 82) / 3 / 15)
