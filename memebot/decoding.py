"""Decoding methods by name, with their defaults: what the engine's API offers (engine/schema.py)
and its pickers implement (engine/decoding/pickers.py), defined once for both."""

from __future__ import annotations

from typing import Literal, get_args

Method = Literal[
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
# Candidates decoded per caption (best-of-N, picked by score): 4 keeps the default style's
# single caption within its latency budget on a 2-core CPU (docs/ENGINE.md, "Best-of-N").
DEFAULT_CANDIDATES = 4
MIN_SCORE = 0.1  # threshold family: r ~ U[min_score, 1] (the article's value)
BEAM_MIN_SCORE = 0.0001  # beam: candidates p >= min_score * top (the article's value)


def default_min_score(method: str) -> float:
    return BEAM_MIN_SCORE if method == "beam" else MIN_SCORE
