"""Decoding methods by name, with their defaults: what the engine's API offers (engine/schema/)
and its pickers implement (engine/decoding/pickers.py), defined once for both."""

from __future__ import annotations

from typing import Literal, get_args

Method = Literal[
    "natural",
    "calibrated",
    "threshold",
    "threshold-weighted",
    "beam",
    "greedy",
    "temperature",
    "top-k",
    "top-p",
    "top-k-top-p",
]
METHODS: tuple[Method, ...] = get_args(Method)
DEFAULT_METHOD: Method = "calibrated"
DEFAULT_BEAM_WIDTH = 5
# natural: nucleus sampling with box lengths drawn as calibrated draws them. A word's first
# character is drawn from a wide nucleus (where captions differ), the rest of the word from a
# narrower one (where made-up words come from); docs/ENGINE.md, "The default style".
NATURAL_START_TOP_P = 1.0
NATURAL_WORD_TOP_P = 0.9
# Its boxes end nearer their drawn length than calibrated's (the nucleus holds the marker at
# more word ends), so its drawn lengths are scaled up to land on the real captions' mean.
NATURAL_LENGTH_SCALE = 1.02
# Candidates decoded per caption (best-of-N, picked by score): 4 keeps the default style's
# single caption within its latency budget on a 2-core CPU (docs/ENGINE.md, "Best-of-N").
DEFAULT_CANDIDATES = 4
MIN_SCORE = 0.1  # threshold family: r ~ U[min_score, 1] (the article's value)
BEAM_MIN_SCORE = 0.0001  # beam: candidates p >= min_score * top (the article's value)


def default_min_score(method: str) -> float:
    return BEAM_MIN_SCORE if method == "beam" else MIN_SCORE


def default_length_scale(method: str) -> float:
    """What drawn box lengths are multiplied by (calibrated, natural)."""
    return NATURAL_LENGTH_SCALE if method == "natural" else 1.0
