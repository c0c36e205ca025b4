"""Scoring finished captions: what best-of-N picks by, and what beam search samples its final
beams by.

A `ScoreTerm` scores a batch of caption texts of one template, higher is better. A `Scorer`
is a weighted sum: `total = well_formed_weight * well_formed + sum(weight * term)`, with every
part kept so replies can show what the choice rested on (`score_parts`).

The built-in part, `well_formed`, is the generator's own mean log-likelihood per generated
character (markers included), from the log-probability decoding already tracks: it keeps
made-up words and broken endings out, whatever the sampler drew. It is not a ScoreTerm
because it needs the candidates' log-probabilities, not only their texts. Other terms (the
crowd's taste, fitted to Imgflip's votes and shipped with a model) are ScoreTerms added to the
model's scorer when the model loads, so they swap with the model on a reload.

Scores are float32; a term that answers NaN for a candidate ranks it last (-inf), never first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["WELL_FORMED", "ScoreTerm", "Scorer", "Scores"]

WELL_FORMED = "well_formed"


@runtime_checkable
class ScoreTerm(Protocol):
    """One score of caption texts (`box|box|`, as `Sampled.text`) of one template slug ("" for
    an uploaded image): a float32 array, one value per text, higher is better."""

    name: str

    def score(self, texts: Sequence[str], template: str) -> np.ndarray: ...


@dataclass(frozen=True)
class Scores:
    """Scores of k candidates: the weighted `total` [k] and each part [k] unweighted."""

    total: np.ndarray
    parts: dict[str, np.ndarray]

    def parts_of(self, i: int) -> dict[str, float]:
        """Candidate i's parts as plain floats (what a reply carries)."""
        return {name: float(v[i]) for name, v in self.parts.items()}


@dataclass(frozen=True)
class Scorer:
    """A weighted sum of the built-in well-formedness part and any `terms` (term, weight)."""

    terms: tuple[tuple[ScoreTerm, float], ...] = field(default=())
    well_formed_weight: float = 1.0

    def __post_init__(self) -> None:
        names = [WELL_FORMED, *(t.name for t, _ in self.terms)]
        if len(set(names)) != len(names):
            raise ValueError(f"score terms need distinct names, got {', '.join(names)}")

    @property
    def names(self) -> list[str]:
        return [WELL_FORMED, *(t.name for t, _ in self.terms)]

    def with_term(self, term: ScoreTerm, weight: float = 1.0) -> Scorer:
        """This scorer with `term` added (a new object: a model's scorer is shared by the jobs
        in flight, so it is never changed in place)."""
        return Scorer((*self.terms, (term, weight)), self.well_formed_weight)

    def score(
        self,
        texts: Sequence[str],
        template: str,
        logprobs: Sequence[float],
        chars: Sequence[int],
    ) -> Scores:
        """Scores of candidates `texts` of `template`: `logprobs` their log-probabilities under
        the generator (generated part), `chars` how many characters it generated for each."""
        k = len(texts)
        if len(logprobs) != k or len(chars) != k:
            raise ValueError(f"{k} texts, {len(logprobs)} logprobs, {len(chars)} character counts")
        lp = np.asarray(logprobs, dtype=np.float64)
        n = np.maximum(np.asarray(chars, dtype=np.float64), 1.0)
        well_formed = (lp / n).astype(np.float32)  # a start text that closed every box: 0
        parts = {WELL_FORMED: _clean(well_formed)}
        total = self.well_formed_weight * parts[WELL_FORMED]
        for term, weight in self.terms:
            got = _clean(np.asarray(term.score(texts, template), dtype=np.float32))
            if got.shape != (k,):
                raise ValueError(f"score term {term.name!r}: {got.shape} scores for {k} texts")
            parts[term.name] = got
            if weight:  # a zero weight reports the part without letting -inf decide
                total = total + weight * got
        return Scores(np.asarray(total, dtype=np.float32), parts)


def _clean(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), np.float32(-np.inf), x).astype(np.float32)
