"""A server's budget for taste retrains: at most one start per MEMEBOT_TASTE_COOLDOWN seconds
(default 600). Base runs have no cooldown: they run one at a time (the store's rule).

Two sources of "when did this server last start one", the later wins: the starts this process
made itself (two admins of one server at once: the second is told to wait, before any store
write), and the store's record of taste runs, which survives restarts and is shared by every
shard. Plain code on a clock the caller may replace, tested without Discord or a worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from memebot.errors import UsageError
from memebot.store import RunInfo

LastStart = Callable[[int], Awaitable[datetime | None]]  # guild id -> its last taste start


class CoolingDown(UsageError):
    """A server asked for a taste retrain too soon after its last one."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"this server's taste was retrained recently; try again in {wait_text(retry_after)}"
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


def wait_text(seconds: float) -> str:
    """ "45 s", "9 min 30 s" (rounded up: "try again in 0 s" would be wrong)."""
    s = max(1, int(-(-seconds // 1)))
    return f"{s} s" if s < 60 else f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")


def remaining(last_start: datetime | None, now: datetime, cooldown: float) -> float:
    """Seconds until the next start is allowed (0: now)."""
    if last_start is None or cooldown <= 0:
        return 0.0
    return max(0.0, cooldown - (now - last_start).total_seconds())


def last_start(runs: Iterable[RunInfo]) -> datetime | None:
    """When the newest of a server's taste runs was asked for. A run that failed before any
    worker took it (the queue refused it) used nothing and does not count."""
    times = [r.created_at for r in runs if not (r.status == "failed" and r.started_at is None)]
    return max(times, default=None)


class TasteCooldown:
    """One per process (the bot): `begin(guild_id)` admits a start or raises CoolingDown;
    `undo(guild_id)` gives the budget back when the start did not happen after all (too few
    votes, a run already going)."""

    def __init__(
        self,
        cooldown: float,
        stored: LastStart | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.cooldown = cooldown
        self._stored = stored
        self._clock = clock
        self._starts: dict[int, datetime] = {}
        self._before: dict[int, datetime | None] = {}  # what undo restores
        self._lock = asyncio.Lock()  # the store read and the record are one step

    async def _last(self, guild_id: int) -> datetime | None:
        mine = self._starts.get(guild_id)
        theirs = await self._stored(guild_id) if self._stored is not None else None
        return max((t for t in (mine, theirs) if t is not None), default=None)

    async def remaining(self, guild_id: int) -> float:
        return remaining(await self._last(guild_id), self._clock(), self.cooldown)

    async def begin(self, guild_id: int) -> datetime:
        """Records a start now and returns its time; CoolingDown if it is too soon."""
        async with self._lock:
            wait = remaining(await self._last(guild_id), self._clock(), self.cooldown)
            if wait > 0:
                raise CoolingDown(wait)
            now = self._clock()
            self._before[guild_id] = self._starts.get(guild_id)
            self._starts[guild_id] = now
            return now

    def undo(self, guild_id: int) -> None:
        """Forget the last `begin` of this guild (nothing ran)."""
        if guild_id not in self._before:
            return
        before = self._before.pop(guild_id)
        if before is None:
            self._starts.pop(guild_id, None)
        else:
            self._starts[guild_id] = before
