"""A server's taste acting on decoding itself: the per-character tilt, and its length factor.

A taste (memebot/taste_file.py) scores a finished caption as a sum of weights of its hashed
n-grams (memebot/ngrams.py). Every gram is completed by one character, so the score can be
paid out as the caption is written: at each sampling step a row whose request brings a tilt
adds `strength * (sum of the weights of the grams each candidate character would complete)`
to that candidate's log-probability. With one candidate per caption (the default style) there
is nothing to pick among, so this is how a server's taste changes its captions at no extra
decoding rows. The tilt is greedy (it sees the grams a character completes, not the words it
leads to), so it pays the taste out less than sampling from p(caption) * exp(taste) would.

The grams a character completes, on the text as hash_features normalises it (lowercase,
spaces collapsed, none beside a `|`; the caption led by `|`):

- the character 3-, 4- and 5-grams ending at it;
- when it ends a word (any character outside `[a-z0-9']`): that word's unigram and its bigram
  with the word before; a `|` is a word of its own, so it adds its unigram and bigram too;
- a space is held back: it completes its character grams only with the next character, and
  none at all if that is a `|` (normalisation drops it), so that what the steps complete adds
  up to exactly the grams hash_features finds in the finished caption
  (tests/test_engine_decoding_tilt.py checks the buckets).

Each row keeps a little state (`WIDTH` int64 columns: its last 4 bytes, the hashes of the
current and previous word, two flags): the polynomial hash is Horner-form, so the hashes of
all V candidates of every row are a few vectorised NumPy operations a step. Candidates that are
not one ASCII byte (none in the shipped vocabulary) get no tilt; the state still follows them.

The length factor: a taste fitted on votes that favour shorter (or longer) captions carries a
factor (retrain/taste_fit.py, gated on held-out memes) that scales the box lengths
length-targeted methods draw (`natural`, `calibrated`), which no per-character tilt could move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memebot.caption_format import BOX_END
from memebot.ngrams import CHAR_NS, HASH_P, SALT_BI, SALT_CHAR, SALT_UNI, mix

__all__ = [
    "TILT_GRAMS",
    "WIDTH",
    "TasteTilt",
    "append",
    "candidate_bytes",
    "fresh",
    "grams",
    "is_word",
    "mark",
    "opening",
    "tilt_of",
    "weigh",
]

# The 1/sqrt(grams) a taste scales a caption's row by (memebot/ngrams.py), taken at a typical
# caption's gram count: a natural caption of ~45 characters has ~3 x 45 character grams and
# ~25 word grams. `strength = tilt / sqrt(TILT_GRAMS)` pays the taste out in its logit's units.
TILT_GRAMS = 160

_U = np.uint64
_P = _U(HASH_P)
_PIPE, _SPACE, _QUOTE = ord(BOX_END), ord(" "), ord("'")
_PIPE_WORD = _U(_PIPE + 1)  # the hash of the word `|`
# State columns: the last 4 bytes of the normalised text (oldest first, -1: none), the hashes
# of the current word and of the word before (uint64 stored as int64), flags.
_LAST, CUR, PREV, FLAGS = 0, 4, 5, 6
WIDTH = 7
IN_WORD, PENDING = 1, 2  # in a word; a space held back


@dataclass(frozen=True, eq=False)
class TasteTilt:
    """What a request's taste does to its decoding: `weights` [n_buckets] (the taste's), the
    tilt's `strength` per gram weight, and `length_factor` for drawn box lengths. Compared by
    identity: rows of one taste share a slot of the row table's weight table."""

    weights: np.ndarray  # float32 [n_buckets], a power of two
    strength: float
    length_factor: float = 1.0
    name: str = ""  # for logs: whose taste

    @property
    def mask(self) -> int:
        return len(self.weights) - 1


def tilt_of(
    weights: np.ndarray, tilt: float, length_factor: float = 1.0, name: str = ""
) -> TasteTilt | None:
    """The tilt of a taste's `weights` at the setting `tilt` (MEMEBOT_TASTE_TILT, in units of
    the taste's logit); None when it would change nothing."""
    if not tilt and length_factor == 1.0:
        return None
    w = np.asarray(weights, dtype=np.float32)
    return TasteTilt(w, float(tilt) / float(np.sqrt(TILT_GRAMS)), float(length_factor), name)


def candidate_bytes(chars: Sequence[str]) -> tuple[np.ndarray, list[bytes]]:
    """Per vocabulary id (`chars`: id -> character, specials ""), the byte it adds to the
    normalised text as a candidate (-1: no tilt) [V], and the bytes it adds when picked."""
    one = np.full(len(chars), -1, dtype=np.int64)
    seqs: list[bytes] = []
    for i, ch in enumerate(chars):
        if (ch and ch.isspace()) or ch == "\x00":
            ch = " "  # whitespace is a space once normalised (and the batch separator is)
        b = ch.lower().encode("utf-8")
        seqs.append(b)
        if len(b) == 1:
            one[i] = b[0]
    return one, seqs


def opening() -> int:
    """The salted hash of the one gram every caption has before its first character: the
    unigram of its leading `|` (a constant of every caption's score, so it tilts nothing)."""
    return int(_PIPE_WORD ^ SALT_UNI)


def fresh(k: int) -> np.ndarray:
    """The state of `k` rows at a caption's start (the text is the leading `|`)."""
    s = np.zeros((k, WIDTH), dtype=np.int64)
    s[:, _LAST : _LAST + 4] = [-1, -1, -1, _PIPE]
    s[:, PREV] = int(_PIPE_WORD)
    return s


def is_word(b: np.ndarray) -> np.ndarray:
    """Which normalised bytes `b` are word characters (letters, digits, `'`; -1: none)."""
    return ((b >= 97) & (b <= 122)) | ((b >= 48) & (b <= 57)) | (b == _QUOTE)


def _tail_hash(last: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash of the last `j` bytes of windows `last` [k, 4], and whether there are that many."""
    h = np.zeros(len(last), dtype=_U)
    for i in range(4 - j, 4):
        h = h * _P + (last[:, i] + 1).astype(_U)
    return h, last[:, 4 - j] >= 0


def grams(state: np.ndarray, c: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The grams each candidate byte `c` [k, V] (-1: none) completes after rows `state`
    [k, WIDTH]: (salted hash, valid) pairs, each of a shape that broadcasts to [k, V] (mix
    them, mask them to buckets, and sum the weights where valid)."""
    last = state[:, _LAST : _LAST + 4]
    flags = state[:, FLAGS]
    in_word, pending = (flags & IN_WORD) > 0, (flags & PENDING) > 0
    cur, prev = state[:, CUR].astype(_U)[:, None], state[:, PREV].astype(_U)[:, None]
    ok = c >= 0
    pipe, space = c == _PIPE, c == _SPACE
    # the held-back space is committed before any character but a `|` (and another space)
    with_space = pending[:, None] & ok & ~pipe & ~space
    spaced = np.concatenate([last[:, 1:], np.full((len(last), 1), _SPACE)], axis=1)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    cu = (c + 1).astype(_U)
    for n in CHAR_NS:
        h, v = _tail_hash(last, n - 1)
        hs, vs = _tail_hash(spaced, n - 1)
        # the held-back space's own n-gram, then the candidate's on the text it leaves
        out.append((((h * _P + _U(_SPACE + 1)) ^ SALT_CHAR[n])[:, None], v[:, None] & with_space))
        base = np.where(with_space, hs[:, None], h[:, None])
        out.append(((base * _P + cu) ^ SALT_CHAR[n], np.where(with_space, vs[:, None], v[:, None])))
        out[-1] = (out[-1][0], out[-1][1] & ok & ~space)
    ends = in_word[:, None] & ok & ~is_word(c)  # the current word ends here
    out.append((cur ^ SALT_UNI, ends))
    out.append(((prev * _P ^ cur) ^ SALT_BI, ends))
    last_word = np.where(in_word[:, None], cur, prev)
    out.append((np.full((1, 1), _PIPE_WORD ^ SALT_UNI), pipe))
    out.append(((last_word * _P ^ _PIPE_WORD) ^ SALT_BI, pipe))
    return out


# Powers of P for the 4-byte window, oldest first: the hash of the last j bytes is the sum of
# the window's last j terms (Horner's form unrolled; uint64 wraps as the hash does).
_POW = np.array([pow(HASH_P, e, 1 << 64) for e in (3, 2, 1, 0)], dtype=_U)
_NS = len(CHAR_NS)
_SALT_CHARS = np.array([SALT_CHAR[n] for n in CHAR_NS], dtype=_U)  # [3]
_SMALL = _NS + 4  # per row: the held-back space's n-grams, a word's uni/bigram, `|`'s two


def _hashed(
    state: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`grams` in one block, for one `mix` pass: the salted hashes [k, 3*V + _SMALL] of what
    each candidate `c` [k or 1, V] completes after rows `state` [k, WIDTH] — per n its
    n-gram ending at the candidate ([k, 3, V] flattened), then per row the grams whose hash
    does not depend on the candidate (the held-back space's three n-grams, the ending word's
    unigram and bigram, `|`'s unigram and bigram). Also their validity: the candidate n-grams'
    [k, 3, V], the space n-grams' per row [k, 3] (each also needs `with_space`), and the
    candidate-wise conditions `with_space`, `ends`, `pipe` [k, V]."""
    k, v = len(state), c.shape[1]
    last = state[:, _LAST : _LAST + 4]
    flags = state[:, FLAGS]
    in_word, pending = (flags & IN_WORD) > 0, (flags & PENDING) > 0
    cur, prev = state[:, CUR].astype(_U), state[:, PREV].astype(_U)
    ok = c >= 0
    pipe, space = c == _PIPE, c == _SPACE
    with_space = pending[:, None] & ok & ~pipe & ~space  # [k, V]
    # tails[:, j]: the hash of the window's last 4 - j bytes (j = 0..3); has[:, j]: it has them
    tails = np.cumsum(((last + 1).astype(_U) * _POW)[:, ::-1], axis=1)[:, ::-1]
    has = last >= 0
    h = tails[:, 3 - _NS :][:, ::-1][:, 1:]  # hash of the last n - 1 bytes, n = 3, 4, 5 [k, 3]
    hv = has[:, ::-1][:, 1 : _NS + 1]  # ... whether there are that many
    # with the held-back space committed first: the last n - 2 bytes, then the space
    hs = tails[:, ::-1][:, :_NS] * _P + _U(_SPACE + 1)
    hsv = has[:, ::-1][:, :_NS]
    base = np.where(with_space[:, None, :], hs[:, :, None], h[:, :, None])  # [k, 3, V]
    cand = (base * _P + (c + 1).astype(_U)[:, None, :]) ^ _SALT_CHARS[None, :, None]
    cand_ok = np.where(with_space[:, None, :], hsv[:, :, None], hv[:, :, None])
    cand_ok &= (ok & ~space)[:, None, :]
    last_word = np.where(in_word, cur, prev)
    small = np.empty((k, _SMALL), dtype=_U)
    small[:, :_NS] = (h * _P + _U(_SPACE + 1)) ^ _SALT_CHARS[None, :]
    small[:, _NS] = cur ^ SALT_UNI
    small[:, _NS + 1] = (prev * _P ^ cur) ^ SALT_BI
    small[:, _NS + 2] = _PIPE_WORD ^ SALT_UNI
    small[:, _NS + 3] = (last_word * _P ^ _PIPE_WORD) ^ SALT_BI
    hashes = np.concatenate([cand.reshape(k, _NS * v), small], axis=1)
    ends = in_word[:, None] & ok & ~is_word(c)  # the current word ends here
    return hashes, cand_ok, hv, with_space, ends, np.broadcast_to(pipe, (k, v))


def weigh(
    state: np.ndarray,
    c: np.ndarray,
    table: np.ndarray,
    slot: np.ndarray,
    mask: np.ndarray,
    seen: np.ndarray | None = None,
    seen_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of the weights of the grams each candidate `c` [k or 1, V] completes, each row by
    its weights `table[slot[row]]` and bucket mask `mask[row]` (uint64 [k]): float32 [k, V].
    `seen` [rows, buckets] (bool): the buckets each caption has completed so far, row
    `seen_rows[row]` of it (default: the row itself); a liked gram pays out once per caption
    (a taste's score counts repeats, but a tilt that paid for them again at every step would
    write `!!!!!!!!` until the box must close). With V = 1 each row is one (caption,
    candidate) pair: the engine weighs only the candidates a row's method can draw.

    The same sum as over `grams`, with every gram hashed, mixed and looked up in one pass (the
    engine calls this every step for every tilted row: NumPy's per-call cost, not the
    arithmetic, is what a step pays)."""
    k, v = len(state), c.shape[1]
    hashes, cand_ok, space_ok, with_space, ends, pipe = _hashed(state, c)
    b = (mix(hashes) & mask.astype(_U)[:, None]).astype(np.intp)  # [k, 3V + _SMALL]
    # flat takes: a 2-D fancy index costs twice as much at these sizes
    w = table.ravel().take(b + (slot * table.shape[1])[:, None])
    if seen is not None:
        own = np.arange(k) if seen_rows is None else seen_rows
        hit = seen.ravel().take(b + (own * seen.shape[1])[:, None])
        w = np.where((w > 0) & hit, np.float32(0), w)
    total = np.where(cand_ok, w[:, : _NS * v].reshape(k, _NS, v), np.float32(0)).sum(axis=1)
    small = w[:, _NS * v :]
    spaced = np.where(space_ok, small[:, :_NS], np.float32(0)).sum(axis=1)
    total += np.where(with_space, spaced[:, None], np.float32(0))
    total += np.where(ends, (small[:, _NS] + small[:, _NS + 1])[:, None], np.float32(0))
    total += np.where(pipe, (small[:, _NS + 2] + small[:, _NS + 3])[:, None], np.float32(0))
    return total.astype(np.float32, copy=False)


def mark(state: np.ndarray, c: np.ndarray, mask: np.ndarray, seen: np.ndarray) -> None:
    """Mark in `seen` [k, buckets] (in place) the buckets bytes `c` [k] complete after rows
    `state` [k, WIDTH] (call before `append`)."""
    k = len(c)
    hashes, cand_ok, space_ok, with_space, ends, pipe = _hashed(state, c[:, None])
    b = (mix(hashes) & mask.astype(_U)[:, None]).astype(np.intp)  # [k, 3 + _SMALL]
    valid = np.concatenate(
        [cand_ok.reshape(k, _NS), space_ok & with_space, ends, ends, pipe, pipe], axis=1
    )
    rows = np.broadcast_to(np.arange(k)[:, None], valid.shape)
    seen[rows[valid], b[valid]] = True


def append(state: np.ndarray, c: np.ndarray) -> None:
    """Rows `state` [k, WIDTH] (in place) after their bytes `c` [k]."""
    last = state[:, _LAST : _LAST + 4]
    flags = state[:, FLAGS]
    in_word, pending = (flags & IN_WORD) > 0, (flags & PENDING) > 0
    cur, prev = state[:, CUR].astype(_U), state[:, PREV].astype(_U)
    pipe, space, word = c == _PIPE, c == _SPACE, is_word(c)
    dropped = space & (pending | (last[:, 3] == _PIPE))  # collapsed, or beside a `|`
    with_space = pending & ~pipe & ~space
    ends = in_word & ~word
    prev = np.where(ends, cur, prev)
    prev = np.where(pipe, _PIPE_WORD, prev)
    shifted = np.concatenate([last[:, 1:], np.full((len(last), 1), _SPACE)], axis=1)
    last = np.where(with_space[:, None], shifted, last)
    pushed = np.concatenate([last[:, 1:], c[:, None]], axis=1)
    last = np.where(space[:, None], last, pushed)
    cur = np.where(word, np.where(in_word, cur, _U(0)) * _P + (c + 1).astype(_U), _U(0))
    held = (space & ~dropped) | (pending & space)
    state[:, _LAST : _LAST + 4] = last
    state[:, CUR] = cur.astype(np.int64)
    state[:, PREV] = prev.astype(np.int64)
    state[:, FLAGS] = np.where(word, IN_WORD, 0) | np.where(held, PENDING, 0)


def append_text(state: np.ndarray, text: str) -> None:
    """One row's state [1, WIDTH] (in place) after `text` (a start text)."""
    _, seqs = candidate_bytes(list(text))
    for b in b"".join(seqs):
        append(state, np.array([b], dtype=np.int64))
