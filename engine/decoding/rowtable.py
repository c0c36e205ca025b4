"""Every row of every per-row-sampled request in flight, kept as arrays (struct of arrays).

Under load the engine steps ~64 rows at once; per-request Python objects per step cost more
than the model step itself. Here a step's bookkeeping — which id each row feeds, what the
caption rules allow next (`pickers.rule_code`, vectorised), the picks, the uniform draws, box
and length counters, the calibrated length targets, finished rows — is a fixed number of NumPy
operations whatever the number of rows. Only a finished row costs Python (its text).

Each row draws from its own generator, pre-drawn at admission into its row of `floats`, in
the order single draws would come: the length target of the first box, then two per picked
character and one more target each time a box closes. A request of more than one row (`n`
captions of `n_candidates` candidates each) gives each row its own generator, spawned from the
seed. So a row's caption depends only on its request, never on which other rows share the
step (batched == unbatched).

A row whose request brings a taste's tilt (tilt.py) keeps the tilt's state in `tilt_state` and
its taste's slot in `tilt_slot` (-1: none); its candidates' log-probabilities are tilted before
the pick (the caption's log-probability stays the model's), and its drawn box lengths are scaled
by the taste's length factor. Rows with no tilt cost nothing more and pick exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.decoding import repeats, tilt, tilt_kernel
from engine.decoding.jobs import RowJob, Sampled
from engine.decoding.pickers import (
    FORBID_END,
    FORCE_END,
    FREE,
    PREFER_END,
    pick_rows,
    rule_code,
    tilt_floor,
)
from engine.decoding.unseen import seeded_box
from memebot.artifact.templates import LENGTH_LEVELS
from memebot.caption_format import BOX_END

if TYPE_CHECKING:
    from engine.decoding.model import LoadedModel

_LEVELS = np.asarray(LENGTH_LEVELS)
_STEPS = len(_LEVELS) - 1
# The interpolation in _draw_targets finds a draw's interval arithmetically: levels are even.
assert np.allclose(_LEVELS, np.linspace(0, 1, _STEPS + 1)), "LENGTH_LEVELS must be evenly spaced"
_NEXT_TWO = np.array([1, 2])  # floats columns of a row's next two draws, after its pointer
# Columns of RowTable.ints [R, 19]. Changing per step: prefix ids fed so far, id fed next,
# closed boxes, length of the open box, of the text (start included), calibrated target of
# the open box (0: none), next unused draw, generated ids so far. Fixed per request: prefix
# length, decoding group, conditioning id, box count, max_len, allow_empty_boxes, calibrated.
# Fixed per row: the box that opens with the row's forced ids (`force`; -1: none) and their
# number (a template without captions opening a box with its name, engine/decoding/unseen.py).
# For the repetition guard (repeats.py): the caption's last character id (start text included;
# -1: none yet) and how many times in a row it ends the caption.
FED, LAST, BOXES, BOX_LEN, LENGTH, TARGET, PTR, GLEN = range(8)
PLEN, GROUP, COND, NBOX, MAXLEN, EMPTY_OK, CALIBRATED = range(8, 15)
FORCE_BOX, FORCE_LEN = 15, 16
RUN_ID, RUN_LEN = 17, 18
_COLUMNS = 19


class RowTable:
    """Rows of the RowJobs of one batch; `step` consumes their log-probabilities and hands each
    finished caption to its job (`RowJob.deliver`)."""

    def __init__(self, model: LoadedModel, close_early: int):
        self.model = model
        self.close_early = close_early  # see batch.CLOSE_EARLY
        self.end_id, self.space_id = model.vocab.box_end_id, model.vocab.space_id
        self.id_char = np.array(["", "", "?", *model.vocab.chars], dtype=object)
        self.decodings: dict[tuple[Any, ...], int] = {}  # decoding -> group id
        self.decoding_of: list[Any] = []
        self.ints = np.zeros((0, _COLUMNS), dtype=np.int64)  # [R, 19], columns above
        self.objs = np.empty((0, 3), dtype=object)  # [R, 3]: its RowJob, start text, row in job
        self.floats = np.zeros((0, 2))  # [R, 1 + W]: log-probability, then the row's draws
        self.prefix = np.zeros((0, 1, 2), dtype=np.int64)  # [R, P, 2]: ids fed first, box
        self.gen = np.zeros((0, 1), dtype=np.int64)  # [R, G] generated ids
        self.quant = np.zeros((0, 1, len(LENGTH_LEVELS)))  # [R, boxes, levels] length quantiles
        self.force = np.zeros((0, 1), dtype=np.int64)  # [R, F] ids that open box FORCE_BOX
        # Tastes' tilts: per row its state and slot (-1: none) and its drawn lengths' factor;
        # per slot the taste, its weights (a row of `tilt_w`), bucket mask and strength.
        self.cand_bytes, self.char_bytes = tilt.candidate_bytes(list(self.id_char))
        # [V] word characters as the tilt's grams see them (a tilted letter is held closer to
        # the model inside a word)
        self.letters = tilt.is_word(self.cand_bytes)
        self.marks = repeats.marks(list(self.id_char))  # [V] what the repetition guard limits
        self.tilt_state = np.zeros((0, tilt.WIDTH), dtype=np.int64)
        self.tilt_slot = np.zeros(0, dtype=np.int64)
        self.length_factor = np.ones(0)
        self.tilt_seen = np.zeros((0, 1), dtype=bool)  # [R, buckets]: grams paid out so far
        self.tilts: list[tilt.TasteTilt] = []
        self.tilt_w = np.zeros((0, 1), dtype=np.float32)
        self.tilt_mask = np.zeros(0, dtype=np.uint64)
        self.tilt_strength = np.zeros(0, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.ints)

    @property
    def owner(self) -> np.ndarray:
        return self.objs[:, 0]

    def add(self, jobs: Sequence[RowJob]) -> int:
        """Append the rows of `jobs` (`RowJob.rows` each); returns how many."""
        if not jobs:
            return 0
        parts: list[tuple[np.ndarray, ...]] = []
        for job in jobs:
            parts.append(self._rows_of(job))
        R = len(self)
        self.ints = np.concatenate([self.ints, *(p[0] for p in parts)])
        self.objs = np.concatenate([self.objs, *(p[1] for p in parts)])
        self.floats = _cat([self.floats, *(p[2] for p in parts)])
        self.prefix = _cat([self.prefix, *(p[3] for p in parts)])
        self.gen = _cat([self.gen, *(p[4] for p in parts)])
        self.quant = _cat([self.quant, *(p[5] for p in parts)], edge=True)
        self.force = _cat([self.force, *(p[6] for p in parts)])
        self.tilt_state = np.concatenate([self.tilt_state, *(p[7] for p in parts)])
        self.tilt_slot = np.concatenate([self.tilt_slot, *(p[8] for p in parts)])
        self.length_factor = np.concatenate([self.length_factor, *(p[9] for p in parts)])
        fresh = np.zeros((len(self) - R, self.tilt_w.shape[1]), dtype=bool)
        self.tilt_seen = _cat([self.tilt_seen, fresh])  # as wide as the widest taste
        new = np.arange(R, len(self))
        self._draw_targets(new[self.ints[new, BOXES] < self.ints[new, NBOX]])
        return len(self) - R

    def _rows_of(self, job: RowJob) -> tuple[np.ndarray, ...]:
        req, n = job.req, job.rows
        seeds = [req.seed] if n == 1 else np.random.SeedSequence(req.seed).spawn(n)
        ids = job.prefix  # BOS + the start text's ids
        prefix = np.array([[c, req.start[:i].count(BOX_END)] for i, c in enumerate(ids)])
        group = self.decodings.setdefault(job.group, len(self.decodings))
        if group == len(self.decoding_of):
            self.decoding_of.append(req.decoding)
        row = np.zeros(_COLUMNS, dtype=np.int64)
        # the start text's last character (BOS without one): the first pick begins a word,
        # or follows a letter, as that character says (inputs() feeds the prefix till then)
        row[LAST] = ids[-1]
        row[BOXES] = job.start_boxes
        row[BOX_LEN] = job.start_box_len
        row[LENGTH] = len(req.start)
        row[[PLEN, GROUP, COND, NBOX, MAXLEN, EMPTY_OK, CALIBRATED]] = [
            len(ids),
            group,
            job.cond,
            req.n_boxes,
            req.max_len,
            req.allow_empty_boxes,
            job.lengths is not None,
        ]
        width = 2 * (req.max_len + 2) + req.n_boxes + 2  # every draw a row can make
        floats = np.zeros((n, 1 + width))
        last, run = repeats.tail_run(ids[1:])  # the start text's
        row[[RUN_ID, RUN_LEN]] = [-1 if last is None else last, run]
        rows = np.tile(row, (n, 1))
        rows[:, FORCE_BOX] = -1
        phrase = job.phrase_ids
        for i, s in enumerate(seeds):
            # one draw past the others decides the row's name seed: the others stay the draws
            # the same seed always made
            draws = np.random.default_rng(s).random(width + 1)
            floats[i, 1:] = draws[:width]
            if phrase is not None:
                rows[i, FORCE_BOX] = seeded_box(float(draws[width]), req.n_boxes)
        force = np.zeros((n, max(1, 0 if phrase is None else len(phrase))), dtype=np.int64)
        if phrase is not None:
            force[:, : len(phrase)] = phrase
            rows[:, FORCE_LEN] = len(phrase)
        quant = np.zeros((n, req.n_boxes, len(LENGTH_LEVELS)))
        if job.lengths is not None:
            quant[:] = np.asarray(job.lengths)[None]
        objs = np.empty((n, 3), dtype=object)
        objs[:, 0], objs[:, 1], objs[:, 2] = job, req.start, range(n)
        gen = np.zeros((n, req.max_len + 1), dtype=np.int64)
        state = tilt.fresh(1)
        slot, factor = -1, 1.0
        if req.tilt is not None:
            slot, factor = self._slot(req.tilt), req.tilt.length_factor
            tilt.append_text(state, req.start)
        return (
            rows,
            objs,
            floats,
            np.repeat(prefix[None], n, 0),
            gen,
            quant,
            force,
            np.repeat(state, n, 0),
            np.full(n, slot, dtype=np.int64),
            np.full(n, factor),
        )

    def _slot(self, t: tilt.TasteTilt) -> int:
        """The slot of taste tilt `t` in the weight table (added if new)."""
        for i, have in enumerate(self.tilts):
            if have is t:
                return i
        width = max(self.tilt_w.shape[1], len(t.weights))
        w = np.zeros((len(self.tilts) + 1, width), dtype=np.float32)
        w[:-1, : self.tilt_w.shape[1]] = self.tilt_w
        w[-1, : len(t.weights)] = t.weights
        self.tilt_w = w
        self.tilt_mask = np.append(self.tilt_mask, np.uint64(t.mask))
        self.tilt_strength = np.append(self.tilt_strength, np.float32(t.strength))
        self.tilts.append(t)
        return len(self.tilts) - 1

    def _tilt(
        self, rows: np.ndarray, lp: np.ndarray, codes: np.ndarray, groups: np.ndarray
    ) -> np.ndarray | None:
        """The tilts [k, V] of table rows `rows` (zeros for rows with no taste, and for the
        characters a row's method cannot draw); None when none has one. `lp` [k, V]: the
        rows' log-probabilities, `codes` [k] their rule codes, `groups` [k] their decodings.

        Only the characters within a row's tilt floor (pickers.tilt_floor: 2% of the top
        probability for `natural`) are weighed: a tenth of the vocabulary on a typical step.
        The compiled loop does it where it was built (tilt_kernel.py); otherwise tilt.weigh,
        each (row, character) pair a row of it. Weighing every character in NumPy cost a
        tilted batch more than the model's own step."""
        slot = self.tilt_slot[rows]
        sel = np.flatnonzero(slot >= 0)
        if not len(sel):
            return None
        lps = lp[sel]
        forbid = codes[sel] == FORBID_END
        if forbid.any():  # the candidates pick_rows will see: no marker where it may not close
            lps = lps.copy()
            lps[forbid, self.end_id] = -np.inf
        floors = np.array([tilt_floor(d) for d in self.decoding_of])[groups[sel]]
        thr = (lps.max(axis=1) + floors).astype(np.float64)  # [n]
        out = np.zeros((len(rows), len(self.cand_bytes)))
        if tilt_kernel.available():
            tilt_kernel.weigh_near(
                np.ascontiguousarray(lps, dtype=np.float64),
                thr,
                forbid,
                self.end_id,
                self.cand_bytes,
                rows[sel],
                sel,
                self.tilt_state,
                self.tilt_slot,
                self.tilt_mask,
                self.tilt_strength,
                self.tilt_w,
                self.tilt_seen,
                out,
            )
            return out
        near = lps >= thr[:, None]
        near &= self.cand_bytes[None, :] >= 0  # characters of no byte complete no gram
        pi, pc = np.nonzero(near)  # (row of sel, character) pairs
        r, s = rows[sel[pi]], slot[sel[pi]]
        bonus = tilt.weigh(
            self.tilt_state[r],
            self.cand_bytes[pc][:, None],
            self.tilt_w,
            s,
            self.tilt_mask[s],
            self.tilt_seen,
            r,
        )  # [pairs, 1]
        out[sel[pi], pc] = self.tilt_strength[s] * bonus[:, 0]
        return out

    def _follow(self, rows: np.ndarray, chars: np.ndarray) -> None:
        """The tilt states of `rows` after their picked `chars`."""
        sel = self.tilt_slot[rows] >= 0
        if not sel.any():
            return
        rows, chars = rows[sel], chars[sel]
        one = self.cand_bytes[chars]
        single = bool((one >= 0).all())  # every pick one byte (the shipped vocabulary's case)
        if single and tilt_kernel.available():
            tilt_kernel.follow(
                rows, one, self.tilt_state, self.tilt_slot, self.tilt_mask, self.tilt_seen
            )
            return
        state = self.tilt_state[rows]
        if single:
            seen = self.tilt_seen[rows]
            tilt.mark(state, one, self.tilt_mask[self.tilt_slot[rows]], seen)
            self.tilt_seen[rows] = seen
            tilt.append(state, one)
        else:  # characters of several bytes (or none): byte by byte
            seqs = [self.char_bytes[c] for c in chars]
            for j in range(max(len(b) for b in seqs)):
                has = np.array([len(b) > j for b in seqs])
                sub = state[has]
                tilt.append(sub, np.array([b[j] for b in seqs if len(b) > j], dtype=np.int64))
                state[has] = sub
        self.tilt_state[rows] = state

    def inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids fed this step [R], their box indices [R] and conditioning ids [R]."""
        v = self.ints
        at = np.minimum(v[:, FED], self.prefix.shape[1] - 1)
        fed = self.prefix[np.arange(len(v)), at]  # [R, 2]
        in_prefix = v[:, FED] < v[:, PLEN]
        chars = np.where(in_prefix, fed[:, 0], v[:, LAST])
        boxes = np.where(in_prefix, fed[:, 1], v[:, BOXES])
        return chars, boxes, v[:, COND]

    def codes(self, v: np.ndarray) -> np.ndarray:
        """What the caption rules allow next for rows `v` [k, _COLUMNS] (pickers.rule_code,
        vectorised)."""
        empty_ok = v[:, EMPTY_OK] == 1
        r = v[:, NBOX] - v[:, BOXES]
        n, max_len, box_len, target = v[:, LENGTH], v[:, MAXLEN], v[:, BOX_LEN], v[:, TARGET]
        at_start = box_len == 0
        per_box = 2 - empty_ok
        room = max_len - (n + 1) - (per_box * r - ~empty_ok)
        force = (room < 0) & (~at_start | empty_ok | (r * per_box > max_len - n))
        code = np.where(target > 0, np.where(box_len < target, FORBID_END, PREFER_END), FREE)
        code = np.where((room >= 0) & at_start & ~empty_ok, FORBID_END, code)
        return np.where(force, FORCE_END, code).astype(np.int8)

    def step(self, logp: np.ndarray) -> np.ndarray:
        """Consume log-probabilities [R, V]; returns the rows that go on (finished rows have
        handed their caption to their job)."""
        R = len(self)
        if R == 0:
            return np.zeros(0, dtype=np.int64)
        if R == 1:
            return self._step_one(logp)
        v = self.ints
        np.minimum(v[:, FED] + 1, v[:, PLEN], out=v[:, FED])
        rows = np.flatnonzero(v[:, FED] >= v[:, PLEN])  # prefix consumed: pick a character
        if len(rows):
            self._pick(rows, logp)
        done = v[:, BOXES] >= v[:, NBOX]
        if not done.any():
            return np.arange(R)
        for i in np.flatnonzero(done):
            self._finish(int(i))
        keep = np.flatnonzero(~done)
        self.take(keep)
        return keep

    def _step_one(self, logp: np.ndarray) -> np.ndarray:
        """`step` for a lone row (a single request: latency counts) with scalar bookkeeping:
        the same rules and draws, a third of the NumPy calls."""
        v = self.ints[0]  # a view: writes land in the table
        if v[FED] < v[PLEN]:
            v[FED] += 1
            if v[FED] < v[PLEN]:
                return np.arange(1)
        fed, last, boxes, box_len, length, target, ptr, glen = v[:8].tolist()
        _, group, _, n_boxes, max_len, empty_ok, _, force_box, force_len = v[8:17].tolist()
        run_id, run_len = int(v[RUN_ID]), int(v[RUN_LEN])
        code = rule_code(length, boxes, box_len, target, n_boxes, max_len, bool(empty_ok))
        u = self.floats[:1, 1 + ptr : 3 + ptr]  # [1, 2]
        start = np.array([box_len == 0 or last == self.space_id])
        after = np.array([box_len > 0 and bool(self.letters[last])])
        codes1 = np.array([code], dtype=np.int8)
        tl = self._tilt(np.zeros(1, dtype=np.int64), logp[:1], codes1, np.array([group]))
        c = int(self._pick_group(group, logp[:1], u, codes1, start, tl, after)[0])
        if c == run_id and run_len >= repeats.MAX_MARK_RUN and self.marks[c]:  # see _pick
            lp1 = repeats.forbid(logp[:1], np.array([c]), np.array([run_len]), self.marks)
            tl = self._tilt(np.zeros(1, dtype=np.int64), lp1, codes1, np.array([group]))
            c = int(self._pick_group(group, lp1, repeats.redraw(u), codes1, start, tl, after)[0])
        if boxes == force_box and box_len < force_len:
            if box_len == 0 and not _name_fits(v[None])[0]:
                v[FORCE_BOX] = -1  # too little room for the whole name: sampled as usual
            elif code != FORCE_END:
                c = int(self.force[0, box_len])
        self._follow(np.zeros(1, dtype=np.int64), np.array([c]))
        v[RUN_ID], v[RUN_LEN] = c, run_len + 1 if c == run_id else 1
        self.floats[0, 0] += logp[0, c]
        self.gen[0, glen] = c
        end = c == self.end_id
        v[:8] = (
            fed,
            c,
            boxes + end,
            0 if end else box_len + 1,
            length + 1,
            0 if end else target,
            ptr + 2,
            glen + 1,
        )
        if end and boxes + 1 >= n_boxes:
            self._finish(0)
            self.take(np.zeros(0, dtype=np.int64))
            return np.zeros(0, dtype=np.int64)
        if end:
            self._draw_targets(np.zeros(1, dtype=np.int64))
        return np.arange(1)

    def _pick(self, rows: np.ndarray, logp: np.ndarray) -> None:
        v = self.ints[rows]  # [k, 19], a copy: written back at the end
        ptr = v[:, PTR]
        u = self.floats[rows[:, None], ptr[:, None] + _NEXT_TWO]  # [k, 2]
        v[:, PTR] += 2
        lp = logp[rows]
        groups = v[:, GROUP]
        # the next character begins a word: the box is empty so far or the last one is a space
        start = (v[:, BOX_LEN] == 0) | (v[:, LAST] == self.space_id)
        after = (v[:, BOX_LEN] > 0) & self.letters[v[:, LAST]]
        codes = self.codes(v)
        # the repetition guard (repeats.py): rows at the limit are picked twice in the one call,
        # as they are and with their mark masked; the second counts where the first is the mark
        at = repeats.at_limit(v[:, RUN_ID], v[:, RUN_LEN], self.marks)  # [n] positions
        if len(at):
            ext, lp2, u2 = repeats.doubled(lp, u, at, v[:, RUN_ID])
            tl = self._tilt(rows[ext], lp2, codes[ext], groups[ext])  # on what each copy sees
            two = self._pick_rows(groups[ext], lp2, u2, codes[ext], start[ext], tl, after[ext])
            chars = repeats.settle(two, at, v[:, RUN_ID])
        else:
            tl = self._tilt(rows, lp, codes, groups)
            chars = self._pick_rows(groups, lp, u, codes, start, tl, after)
        # a seeded row opening its box: the name's next character instead of the pick (unless
        # the caption rules end the box now)
        box_len = v[:, BOX_LEN]
        forced = (v[:, FORCE_BOX] == v[:, BOXES]) & (box_len < v[:, FORCE_LEN])
        if forced.any():
            # the whole name or none of it: a box opening with too little room left for the
            # name (and the boxes after it) is sampled as usual
            short = forced & (box_len == 0) & ~_name_fits(v)
            v[short, FORCE_BOX] = -1
            forced &= ~short & (codes != FORCE_END)
            chars[forced] = self.force[rows[forced], box_len[forced]]
        self._follow(rows, chars)
        v[:, RUN_ID], v[:, RUN_LEN] = repeats.follow(v[:, RUN_ID], v[:, RUN_LEN], chars)
        self.floats[rows, 0] += lp[np.arange(len(rows)), chars]
        self.gen[rows, v[:, GLEN]] = chars
        end = chars == self.end_id
        v[:, GLEN] += 1
        v[:, LENGTH] += 1
        v[:, LAST] = chars
        v[:, BOXES] += end
        v[:, BOX_LEN] = np.where(end, 0, v[:, BOX_LEN] + 1)
        v[end, TARGET] = 0
        self.ints[rows] = v
        closed = rows[end]
        self._draw_targets(closed[v[end, BOXES] < v[end, NBOX]])

    def _pick_rows(
        self,
        groups: np.ndarray,
        lp: np.ndarray,
        u: np.ndarray,
        codes: np.ndarray,
        start: np.ndarray,
        tl: np.ndarray | None,
        after: np.ndarray,
    ) -> np.ndarray:
        """Picks [k] of k rows of decoding groups `groups` [k] (`_pick_group` per group)."""
        if (groups == groups[0]).all():
            return self._pick_group(int(groups[0]), lp, u, codes, start, tl, after)
        chars = np.empty(len(groups), dtype=np.int64)
        for g in np.unique(groups):
            sel = np.flatnonzero(groups == g)
            part = None if tl is None else tl[sel]
            chars[sel] = self._pick_group(
                int(g), lp[sel], u[sel], codes[sel], start[sel], part, after[sel]
            )
        return chars

    def _pick_group(
        self,
        g: int,
        lp: np.ndarray,
        u: np.ndarray,
        codes: np.ndarray,
        word_start: np.ndarray,
        tl: np.ndarray | None = None,
        after_letter: np.ndarray | None = None,
    ) -> np.ndarray:
        d = self.decoding_of[g]
        if tl is not None and not tl.any():
            tl = None  # these rows' tastes tilt nothing here: pick as without
        return pick_rows(
            lp, d, u, codes, self.end_id, self.space_id, word_start, tl, self.letters, after_letter
        )

    def _draw_targets(self, rows: np.ndarray) -> None:
        """Length-targeted rows (calibrated, natural) among `rows` draw a length for their
        open box from its quantiles (np.interp over LENGTH_LEVELS, vectorised), scaled by their
        decoding's `length_scale`; others keep no target."""
        rows = rows[self.ints[rows, CALIBRATED] == 1]
        if not len(rows):
            return
        ptr = self.ints[rows, PTR]
        draw = self.floats[rows, 1 + ptr]
        self.ints[rows, PTR] = ptr + 1
        box = np.minimum(self.ints[rows, BOXES], self.quant.shape[1] - 1)
        q = self.quant[rows, box]  # [k, levels]
        i = np.minimum((draw * _STEPS).astype(np.int64), _STEPS - 1)  # draw in [0, 1)
        lo, hi = _LEVELS[i], _LEVELS[i + 1]
        k = np.arange(len(rows))
        value = q[k, i] + (draw - lo) / (hi - lo) * (q[k, i + 1] - q[k, i])
        scale = np.array([d.lengths for d in self.decoding_of])
        value = value * scale[self.ints[rows, GROUP]] * self.length_factor[rows]
        self.ints[rows, TARGET] = np.maximum(1, np.round(value - self.close_early))

    def _finish(self, i: int) -> None:
        job, start, row = self.objs[i]
        glen = int(self.ints[i, GLEN])
        text = start + "".join(self.id_char[self.gen[i, :glen]])
        boxes = text.split(BOX_END)[: job.req.n_boxes]
        job.deliver(Sampled(boxes, float(self.floats[i, 0]), job.req.template, glen), row)

    def take(self, idx: np.ndarray) -> None:
        """Keep rows `idx` (in that order)."""
        for f in ("ints", "objs", "floats", "prefix", "gen", "quant", "force"):
            setattr(self, f, getattr(self, f)[idx])
        for f in ("tilt_state", "tilt_slot", "length_factor", "tilt_seen"):
            setattr(self, f, getattr(self, f)[idx])
        if len(self.tilts) > 8 and len(self.tilts) > 2 * len(np.unique(self.tilt_slot)):
            self._compact_tilts()

    def _compact_tilts(self) -> None:
        """Drop the weight table's slots no row uses any more (a long-lived batch sees many
        servers' tastes come and go)."""
        live = np.unique(self.tilt_slot[self.tilt_slot >= 0])
        remap = np.full(len(self.tilts) + 1, -1, dtype=np.int64)
        remap[live] = np.arange(len(live))
        self.tilt_slot = remap[self.tilt_slot]  # -1 stays -1 (the last entry)
        self.tilts = [self.tilts[i] for i in live]
        self.tilt_w = self.tilt_w[live]
        self.tilt_mask, self.tilt_strength = self.tilt_mask[live], self.tilt_strength[live]


def _name_fits(v: np.ndarray) -> np.ndarray:
    """Rows `v` [k, 19] at the opening of their seeded box: whether the name, its box's marker
    and two characters for every box after it fit in max_len."""
    after = v[:, NBOX] - v[:, BOXES] - 1
    return v[:, MAXLEN] - v[:, LENGTH] >= v[:, FORCE_LEN] + 1 + 2 * after


def _cat(arrays: list[np.ndarray], edge: bool = False) -> np.ndarray:
    """Rows of `arrays` stacked, each padded on axis 1 to the widest: with zeros, or with
    copies of its last column (`edge`)."""
    w = max(a.shape[1] for a in arrays)
    padded = []
    for a in arrays:
        if a.shape[1] < w:
            if edge and a.shape[1]:
                fill = np.repeat(a[:, -1:], w - a.shape[1], axis=1)
            else:
                fill = np.zeros((len(a), w - a.shape[1], *a.shape[2:]), dtype=a.dtype)
            a = np.concatenate([a, fill], axis=1)
        padded.append(a)
    return np.concatenate(padded)
