"""Every server's taste, served from one engine process at once, without reloads.

A server (Discord guild) that has fitted a taste has an active pointer under the models
location, `<MEMEBOT_MODELS_DIR>/tastes/<guild id>/active.json`, naming its taste file
(memebot/taste_file.py). `TasteCache.terms(server, base_version)` is the score term a request
for that server adds to the model's scorer: only that request's final pick among its candidates
uses it (engine/decoding/jobs.py), so requests of many servers share one decoding batch.

- An LRU of MEMEBOT_TASTE_CACHE servers: a taste is a few KB, so thousands fit; a server left
  out is read again on its next request.
- Each entry is keyed by the taste file the pointer names, its mtime and size, and the base
  model version: a promotion or a rollback (the pointer names another file) or a model reload
  is seen without an engine reload. The pointer is looked at again at most every
  `recheck` seconds per server, so a busy server costs no file system calls per request.
- A taste file that is corrupt, fitted on another base model or of another server is refused
  with one log line (not repeated until the file changes), and the server's previous taste
  keeps serving; a server with no taste (or none valid for this base model) gets the
  default: the model's scorer as it is.

Loading runs on the caller's thread (the event loop): the file is a few KB and is read once
per change, which costs less than handing it to a thread.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.decoding.scoring import ScoreTerm
from engine.decoding.tilt import TasteTilt, tilt_of
from memebot import taste_file
from memebot.errors import MemebotError
from memebot.logs import get_logger

__all__ = ["RECHECK_SECONDS", "TASTE_WEIGHT", "TasteCache"]

log = get_logger(__name__)

RECHECK_SECONDS = 2.0  # how stale a server's pointer may be: a promotion shows within this
# A taste's score is a logit; the well-formedness part is a mean log-probability per character.
# At weight 1 a taste decides among well-formed candidates without promoting broken ones.
TASTE_WEIGHT = 1.0

# (taste file, base model version, the server it must be of) -> its term
LoadTaste = Callable[[Path, str, int], ScoreTerm]
ReadActive = Callable[[Path, int], "Path | None"]  # (models dir, guild id) -> its taste file
_Key = tuple[str, int, int, str]  # taste file, mtime_ns, size, base model version


@dataclass
class _Entry:
    checked: float = -float("inf")  # clock() when the pointer was last looked at
    base: str = ""  # the base model version it was looked at for
    key: _Key | None = None  # what `taste` was loaded from
    taste: ScoreTerm | None = None  # None: the default
    refused: str = ""  # what the last refusal said (logged once, until it changes)
    refused_key: _Key | None = None  # the file last refused: not read again until it changes
    tilt: TasteTilt | None = None  # what `taste` does to sampling (built with it)


def _load_taste(path: Path, base_version: str, guild_id: int) -> ScoreTerm:
    return taste_file.load_taste(path, base_version=base_version, guild_id=guild_id)


class TasteCache:
    """Server id -> its taste term, LRU of `size` servers (module docstring)."""

    def __init__(
        self,
        models_dir: Path,
        *,
        size: int,
        recheck: float = RECHECK_SECONDS,
        weight: float = TASTE_WEIGHT,
        tilt: float = 0.0,
        load: LoadTaste = _load_taste,
        read_active: ReadActive = taste_file.read_active,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1:
            raise ValueError("a taste cache holds at least one server")
        self.models_dir = models_dir
        self.size, self.recheck, self.weight, self.tilt_strength = size, recheck, weight, tilt
        self._load, self._read_active, self._clock = load, read_active, clock
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self.loads = 0  # taste files loaded (a figure for tests and benchmarks)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, server: object) -> bool:
        return isinstance(server, int | str) and int(server) in self._entries

    def for_request(
        self, server: int | str | None, base_version: str
    ) -> tuple[tuple[tuple[ScoreTerm, float], ...], TasteTilt | None]:
        """A request's extra score terms and sampling tilt (none: the default), both from one
        look at `server`'s taste, so the two never come from different versions of it."""
        taste = self.get(server, base_version) if server is not None else None
        if taste is None or server is None:
            return (), None
        return ((taste, self.weight),), self._entries[int(server)].tilt

    def terms(
        self, server: int | str | None, base_version: str
    ) -> tuple[tuple[ScoreTerm, float], ...]:
        """The extra score terms of a request for `server` (none: the default pick)."""
        return self.for_request(server, base_version)[0]

    def tilt(self, server: int | str | None, base_version: str) -> TasteTilt | None:
        """How `server`'s taste tilts a request's sampling (None: not at all)."""
        return self.for_request(server, base_version)[1]

    def get(self, server: int | str, base_version: str) -> ScoreTerm | None:
        """`server`'s taste for the model `base_version`, or None (the default)."""
        gid = int(server)
        now = self._clock()
        entry = self._entries.get(gid)
        if entry is None:
            entry = self._entries[gid] = _Entry()
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(gid)
            if now - entry.checked < self.recheck and entry.base == base_version:
                return entry.taste
        entry.checked, entry.base = now, base_version
        self._refresh(gid, entry, base_version)
        return entry.taste

    def _refresh(self, gid: int, entry: _Entry, base_version: str) -> None:
        try:
            path = self._read_active(self.models_dir, gid)
            if path is None:  # no taste yet, or it was deleted: the default
                entry.key, entry.taste, entry.refused, entry.tilt = None, None, "", None
                return
            st = path.stat()
        except (MemebotError, OSError, ValueError) as e:  # a corrupt pointer, a file gone
            self._refuse(gid, entry, base_version, str(e))
            return
        key: _Key = (str(path), st.st_mtime_ns, st.st_size, base_version)
        if key in (entry.key, entry.refused_key):
            return
        try:
            taste = self._load(path, base_version, gid)
        except (MemebotError, OSError, ValueError) as e:  # corrupt, or of another base model
            entry.refused_key = key
            self._refuse(gid, entry, base_version, str(e))
            return
        self.loads += 1
        entry.key, entry.taste, entry.refused = key, taste, ""
        weights = getattr(taste, "weights", None)  # a taste file's scorer; test fakes have none
        entry.tilt = None
        if weights is not None:
            factor = float(getattr(taste, "length_factor", 1.0))
            entry.tilt = tilt_of(weights, self.tilt_strength, factor, name=f"server {gid}")

    def _refuse(self, gid: int, entry: _Entry, base_version: str, why: str) -> None:
        if entry.key is not None and entry.key[3] != base_version:
            # what served was fitted on another base model: it means nothing for this one
            entry.key, entry.taste, entry.tilt = None, None, None
        if why != entry.refused:
            keeps = "its previous taste" if entry.taste is not None else "the default taste"
            log.warning("server %d: taste refused, %s keeps serving: %s", gid, keeps, why)
        entry.refused = why
