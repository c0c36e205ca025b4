"""Votes from reactions: which reactions count, one lock per message so a message's events
apply in order, events that arrive before their meme is recorded, deleted memes and cleared
reactions, and reconciliation from the reactions Discord holds (a pass: bot/reconcile.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import discord
from sqlalchemy.exc import SQLAlchemyError

from bot.reconcile import Counts, Reactors, Reconciliation
from memebot.logs import get_logger
from memebot.store import Store

log = get_logger(__name__)
N_LOCKS = 256  # message locks, chosen by message id: bounded memory, rare false sharing
# Reaction events on a message that is not (yet) a meme are kept this long, for this many
# messages: a meme's message id is recorded just after it is posted, and a fast voter's event
# can come in between. Most kept events are on other messages and simply expire.
EARLY_TTL = 120.0
EARLY_MAX = 2000


def parse_emoji(text: str) -> discord.PartialEmoji:
    """A vote emoji setting: a Unicode emoji (👍) or a custom one (`<:name:id>` or `name:id`)."""
    return discord.PartialEmoji.from_str(text.strip())


def reaction_key(emoji: discord.PartialEmoji) -> str:
    """How the REST reaction routes name an emoji: the character, or `name:id`."""
    return emoji.name if emoji.id is None else f"{emoji.name}:{emoji.id}"


@dataclass(frozen=True)
class VoteEmoji:
    up: discord.PartialEmoji
    down: discord.PartialEmoji

    @classmethod
    def from_settings(cls, up: str, down: str) -> VoteEmoji:
        return cls(parse_emoji(up), parse_emoji(down))

    def value(self, emoji: discord.PartialEmoji | str) -> int | None:
        """+1, -1, or None for an emoji that is not a vote (a custom emoji matches by id)."""
        if isinstance(emoji, str):
            emoji = parse_emoji(emoji)
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
        # message id -> (monotonic time, user id, value, added), in arrival order
        self._early: OrderedDict[int, list[tuple[float, int, int, bool]]] = OrderedDict()
        self.replayed = 0  # early events applied once their meme was recorded
        self.handled = 0  # events fully processed (tests and the bench wait on it)
        self._handled_changed = asyncio.Condition()

    def lock(self, message_id: int) -> asyncio.Lock:
        return self._locks[hash(message_id) % N_LOCKS]

    async def reaction(
        self, *, message_id: int, user_id: int, emoji: discord.PartialEmoji | str, added: bool
    ) -> bool:
        """Returns whether a stored vote changed (False: not a vote, or not our message)."""
        try:
            value = self.emoji.value(emoji)
            if value is None or user_id == self.bot_user_id:
                return False
            async with self.lock(message_id):
                changed = await self._apply(message_id, user_id, value, added)
                if not changed:  # perhaps a meme whose message id is not recorded yet
                    self._keep_early(message_id, (time.monotonic(), user_id, value, added))
                return changed
        finally:
            await self._count_handled()

    async def _apply(self, message_id: int, user_id: int, value: int, added: bool) -> bool:
        """One vote write; a failed one (database error) is logged and tried once more."""
        for attempt in (1, 2):
            try:
                if added:
                    return await self.store.set_vote(message_id, user_id, value)
                return await self.store.retract_vote(message_id, user_id, value)
            except (SQLAlchemyError, OSError) as e:
                log.log(
                    logging.WARNING if attempt == 1 else logging.ERROR,
                    "%s: could not store %s of %+d by user %s on message %s (%s)",
                    "retrying" if attempt == 1 else "vote left for the next reconciliation",
                    "a vote" if added else "the retraction",
                    value,
                    user_id,
                    message_id,
                    e,
                )
        return False

    def _keep_early(self, message_id: int, event: tuple[float, int, int, bool]) -> None:
        now = event[0]
        while self._early:
            oldest_id, oldest = next(iter(self._early.items()))
            if len(self._early) < EARLY_MAX and now - oldest[-1][0] < EARLY_TTL:
                break
            del self._early[oldest_id]
        self._early.setdefault(message_id, []).append(event)
        self._early.move_to_end(message_id)

    async def attach(self, generation_id: int, message_id: int) -> None:
        """Records that `generation_id` was posted as `message_id`, then applies the reaction
        events that came for that message before (under its lock: none is applied twice)."""
        async with self.lock(message_id):
            await self.store.attach_message(generation_id, message_id)
            now = time.monotonic()
            for at, user_id, value, added in self._early.pop(message_id, []):
                if now - at < EARLY_TTL:
                    await self._apply(message_id, user_id, value, added)
                    self.replayed += 1

    async def deleted(self, message_ids: Collection[int]) -> int:
        """Messages deleted on Discord (one, or a bulk delete): their memes leave /top, /stats,
        reconciliation and curation. Returns how many memes were marked."""
        try:
            for mid in message_ids:
                self._early.pop(mid, None)
            return await self._write_or_log(
                self.store.mark_deleted(message_ids),
                f"the deletion of {len(message_ids)} message(s)",
            )
        finally:
            await self._count_handled()

    async def cleared(self, message_id: int, emoji: discord.PartialEmoji | None) -> int:
        """A moderator removed every reaction on a message (`emoji` None), or every one of
        one emoji: those votes are retracted. Returns how many."""
        try:
            value = None if emoji is None else self.emoji.value(emoji)
            if emoji is not None and value is None:
                return 0  # not a vote emoji
            async with self.lock(message_id):
                self._early.pop(message_id, None)
                return await self._write_or_log(
                    self.store.clear_votes(message_id, value),
                    f"the cleared reactions on message {message_id}",
                )
        finally:
            await self._count_handled()

    async def _write_or_log(self, write: Awaitable[int], what: str) -> int:
        try:
            return await write
        except (SQLAlchemyError, OSError) as e:
            log.error("could not store %s (%s); the next reconciliation does not fix it", what, e)
            return 0

    async def _count_handled(self) -> None:
        async with self._handled_changed:
            self.handled += 1
            self._handled_changed.notify_all()

    async def wait_handled(self, n: int) -> None:
        """Until `n` events (reactions, deletes, clears) have been processed since start."""
        async with self._handled_changed:
            await self._handled_changed.wait_for(lambda: self.handled >= n)

    async def reconcile_recent(
        self,
        reactors: Reactors,
        *,
        hours: float,
        counts: Counts | None = None,
        mine: Callable[[int | None], bool] = lambda _guild: True,
        concurrency: int = 4,
    ) -> int:
        """Make stored votes match the reactions on the memes of the last `hours`
        (bot/reconcile.py); returns the number of changes."""
        since = datetime.now(UTC) - timedelta(hours=hours)
        gens = [
            g
            for g in await self.store.recent_generations(since, limit=5000)
            if g.message_id is not None and g.channel_id is not None and mine(g.guild_id)
        ]
        rec = Reconciliation(
            self.store,
            (self.emoji.up, self.emoji.down),
            self.bot_user_id,
            self.lock,
            reactors,
            counts,
            concurrency,
        )
        return await rec.run(gens)
