"""Votes from reactions, without Discord: which reactions count, one lock per message so a
message's events apply in order, and start-up reconciliation from the reactions Discord holds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store import Store

log = logging.getLogger("memebot.bot")
N_LOCKS = 256  # message locks, chosen by message id: bounded memory, rare false sharing


@dataclass(frozen=True)
class VoteEmoji:
    up: str
    down: str

    def value(self, emoji: str) -> int | None:
        """+1, -1, or None for an emoji that is not a vote."""
        if emoji == self.up:
            return 1
        if emoji == self.down:
            return -1
        return None


class VoteBook:
    """Applies reaction events to the store. A message's events and its reconciliation hold
    the same lock, so a vote cast while reconciliation reads the reactions is applied after
    it and is not overwritten by the older reading."""

    def __init__(self, store: Store, emoji: VoteEmoji, *, bot_user_id: int) -> None:
        self.store = store
        self.emoji = emoji
        self.bot_user_id = bot_user_id
        self._locks = [asyncio.Lock() for _ in range(N_LOCKS)]
        self.handled = 0  # reaction events fully processed (tests and the bench wait on it)
        self._handled_changed = asyncio.Condition()

    def lock(self, message_id: int) -> asyncio.Lock:
        return self._locks[hash(message_id) % N_LOCKS]

    async def reaction(self, *, message_id: int, user_id: int, emoji: str, added: bool) -> bool:
        """Returns whether a stored vote changed (False: not a vote, or not our message)."""
        try:
            value = self.emoji.value(emoji)
            if value is None or user_id == self.bot_user_id:
                return False
            async with self.lock(message_id):
                if added:
                    return await self.store.set_vote(message_id, user_id, value)
                return await self.store.retract_vote(message_id, user_id, value)
        finally:
            async with self._handled_changed:
                self.handled += 1
                self._handled_changed.notify_all()

    async def wait_handled(self, n: int) -> None:
        """Until `n` reaction events have been processed since start."""
        async with self._handled_changed:
            await self._handled_changed.wait_for(lambda: self.handled >= n)

    async def reconcile_recent(
        self,
        reactors: Callable[[int, int, str], Awaitable[set[int]]],
        *,
        hours: float,
        mine: Callable[[int | None], bool] = lambda _guild: True,
        concurrency: int = 4,
    ) -> int:
        """Make stored votes match the reactions on recent memes; `reactors(channel, message,
        emoji)` reads the users who reacted (through REST). Returns the number of changes."""
        since = datetime.now(UTC) - timedelta(hours=hours)
        gens = [
            g
            for g in await self.store.recent_generations(since, limit=5000)
            if g.message_id is not None and g.channel_id is not None and mine(g.guild_id)
        ]
        changes = 0
        sem = asyncio.Semaphore(concurrency)

        async def one(channel_id: int, message_id: int, generation_id: int) -> None:
            nonlocal changes
            async with sem, self.lock(message_id):
                try:
                    up = await reactors(channel_id, message_id, self.emoji.up)
                    down = await reactors(channel_id, message_id, self.emoji.down)
                except LookupError:
                    return  # the message was deleted: its votes stay as they were
                up.discard(self.bot_user_id)
                down.discard(self.bot_user_id)
                result = await self.store.reconcile(generation_id, up, down)
                changes += result.total

        await asyncio.gather(
            *(one(g.channel_id, g.message_id, g.id) for g in gens)  # type: ignore[arg-type]
        )
        log.info("reconciled votes on %d recent memes: %d changes", len(gens), changes)
        return changes
