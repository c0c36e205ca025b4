"""The repetition guard: no caption writes a mark more than MAX_MARK_RUN times in a row.

Left alone the shipped model, once it has written `!!!!`, keeps writing `!` (`fortnite!!!!!!!!`
to the end of the box): in the default style 12% of its captions had a run of four or more
of the same punctuation mark, against 1.2% of real captions (docs/ENGINE.md, "The default
style"). A mark is any character that is not a letter, a digit, a space or the box marker;
letters and digits are left alone (`aaaaand`, `1000000`: the model writes such runs no more
often than people do).

The rule acts on a pick, not on the model: a row picks as it always does, and only a row that
picked a mark it has already written MAX_MARK_RUN times in a row (start text included) picks
again, with that mark masked (`forbid`, as FORBID_END masks the marker) and a fresh uniform made
from its draw (`redraw`). So every other pick, and every caption that never tries a fourth
mark, is the same as without the guard; a blocked row's new pick follows the model's
probabilities among the rest. The row table picks the rows at the limit (`at_limit`) both ways
in the step's one picker call (`doubled`) and keeps the second pick where the first was the
mark (`settle`); beam search (deterministic, no draws) masks the mark among its candidates. Each row
carries its last character id and how many times in a row it has written it (`follow`): a step
costs a few NumPy operations over [R], whatever R.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from memebot.caption_format import BOX_END

MAX_MARK_RUN = 3  # people rarely write more than `!!!`, `???` or `...`
T = TypeVar("T")


def is_mark(ch: str) -> bool:
    """A character the guard limits: one character, neither a letter, a digit, whitespace nor
    the box marker (special ids have no character: never)."""
    return len(ch) == 1 and not ch.isalnum() and not ch.isspace() and ch != BOX_END


def marks(id_char: Sequence[str]) -> np.ndarray:
    """[V] bool: which ids are marks (`id_char[i]`: the character of id i, "" for specials)."""
    return np.array([is_mark(c) for c in id_char], dtype=bool)


def tail_run(seq: Sequence[T]) -> tuple[T | None, int]:
    """The last item of `seq` (ids, or a text's characters) and how many times in a row it
    ends it ((None, 0) when empty)."""
    if not len(seq):
        return None, 0
    last = seq[-1]
    n = 1
    while n < len(seq) and seq[-1 - n] == last:
        n += 1
    return last, n


def forbid(
    logp: np.ndarray,
    last: np.ndarray,
    run: np.ndarray,
    mark: np.ndarray,
    limit: int | None = None,
) -> np.ndarray:
    """`logp` [R,V] with each row's `last` id [R] at -inf where it is a mark (`mark` [V]) the
    row has written `run` [R] >= `limit` times in a row (None: MAX_MARK_RUN, read at the
    call); `logp` itself (not copied) when no row is at the limit. A row with no other finite
    id keeps its mark (a caption rule never leaves a row without a candidate)."""
    at = at_limit(last, run, mark, limit)
    return _masked(logp, at, last[at]) if len(at) else logp


def _masked(logp: np.ndarray, rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """A copy of `logp` [R,V] with (rows[i], ids[i]) at -inf, except in a row whose only
    finite id that is."""
    others = np.isfinite(logp[rows]).sum(axis=1) - np.isfinite(logp[rows, ids])
    out = logp.copy()
    out[rows[others > 0], ids[others > 0]] = -np.inf
    return out


def follow(last: np.ndarray, run: np.ndarray, chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's last id and run length [R] after writing `chars` [R]."""
    return chars, np.where(chars == last, run + 1, 1)


def at_limit(
    last: np.ndarray, run: np.ndarray, mark: np.ndarray, limit: int | None = None
) -> np.ndarray:
    """Positions [n] of the rows whose last id (`last` [R]) is a mark (`mark` [V]) they have
    written `run` [R] >= `limit` times in a row (None: MAX_MARK_RUN, read at the call)."""
    pos = np.flatnonzero((run >= (MAX_MARK_RUN if limit is None else max(1, limit))) & (last >= 0))
    return pos[mark[last[pos]]] if len(pos) else pos


def doubled(
    lp: np.ndarray, u: np.ndarray, at: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A step's R rows and, after them, again the n rows at the limit (positions `at` [n]) with
    their mark (`last` [R]) masked: the rows' positions [R + n], log-probabilities [R + n, V]
    from `lp` [R, V] and draws [R + n, 2] from `u` [R, 2] (`redraw` for the n). A row whose
    only finite id is its mark keeps it (a caption rule never leaves a row no candidate)."""
    R = len(lp)
    ext = np.concatenate([np.arange(R), at])
    lp2 = _masked(lp[ext], np.arange(R, len(ext)), last[at])
    u2 = u[ext]
    u2[R:] = redraw(u2[R:])
    return ext, lp2, u2


def settle(picks: np.ndarray, at: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Each row's pick [R] from the picks [R + n] of `doubled`'s rows: the second pick of a row
    at the limit (positions `at` [n]) counts where its first is its mark (`last` [R]);
    everywhere else the first does."""
    out = picks[: len(last)].copy()
    again = out[at] == last[at]
    out[at[again]] = picks[len(last) :][again]
    return out


REDRAW_SCALE = float(1 << 24)


def redraw(u: np.ndarray) -> np.ndarray:
    """Draws `u` [R, 2] of rows whose pick is redone: the pick's draw (column 1) replaced by its
    digits below 2^-24 scaled back up to [0, 1). The draw fell in the blocked mark's share of
    [0, 1), which tells nothing of those digits: they are as uniform as a new draw, and the
    row's generator (its later draws) is left as it was. Column 0 (the threshold's `r`) stays."""
    out = u.copy()
    out[:, 1] = np.mod(u[:, 1] * REDRAW_SCALE, 1.0)
    return out
