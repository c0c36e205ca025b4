"""One reconciliation pass: the stored votes of recent memes made to match the reactions
Discord holds (votes cast or retracted while the bot was offline).

Reads only what changed: a meme's message is read first (one request, with each emoji's
count), and its reactor lists only when those counts differ from the stored tally. Each
channel's newest meme goes first and alone, so a channel Discord will not show (403, or 404
on the channel or its guild) costs one request and one log line, whatever its number of
memes; a message Discord no longer has (404 Unknown Message) was deleted while the bot was
away and is marked so. discord.py paces the requests by Discord's rate limit buckets; at most
`concurrency` memes are read at once. The pass returns only when every read has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import discord

from memebot.logs import get_logger
from memebot.store import GenerationInfo, Store

log = get_logger(__name__)

# (channel id, message id, emoji) -> the users who reacted with it
Reactors = Callable[[int, int, discord.PartialEmoji], Awaitable[set[int]]]
# (channel id, message id) -> how many others (not the bot) reacted 👍 and 👎
Counts = Callable[[int, int], Awaitable[tuple[int, int]]]


class MessageGone(LookupError):
    """Discord says the message does not exist (404 Unknown Message): deleted."""


class ChannelUnreadable(PermissionError):
    """Discord will not show the channel's messages to the bot (403, or 404 on the channel or
    its guild): a lost permission, a deleted channel, a guild the bot left."""


class Reconciliation:
    def __init__(
        self,
        store: Store,
        emoji: tuple[discord.PartialEmoji, discord.PartialEmoji],
        bot_user_id: int,
        lock: Callable[[int], asyncio.Lock],
        reactors: Reactors,
        counts: Counts | None = None,
        concurrency: int = 4,
    ) -> None:
        self.store = store
        self.up, self.down = emoji
        self.bot_user_id = bot_user_id
        self.lock = lock  # the message's lock: live events on it wait for its reading
        self.reactors = reactors
        self.counts = counts  # None: every meme's reactor lists are read
        self._sem = asyncio.Semaphore(concurrency)
        self.changes = 0
        self.unchanged = 0  # memes whose counts matched: no reactor list read
        self.gone: list[int] = []
        self.unreadable: dict[int, int] = {}  # channel id -> memes skipped there

    async def run(self, gens: Sequence[GenerationInfo]) -> int:
        by_channel: dict[int, list[GenerationInfo]] = {}
        for g in gens:
            if g.channel_id is not None and g.message_id is not None:
                by_channel.setdefault(g.channel_id, []).append(g)
        results = [
            r
            for rs in await asyncio.gather(*(self._channel(ms) for ms in by_channel.values()))
            for r in rs
        ]
        failed = [r for r in results if isinstance(r, BaseException)]
        if self.gone:
            await self.store.mark_deleted(self.gone)
        log.info(
            "reconciled votes on %d recent memes: %d changes, %d unchanged, %d deleted, "
            "%d in %d unreadable channels, %d failed",
            len(gens),
            self.changes,
            self.unchanged,
            len(self.gone),
            sum(self.unreadable.values()),
            len(self.unreadable),
            len(failed),
        )
        if failed:  # every read has ended: now the first unexpected error is raised
            raise failed[0]
        return self.changes

    async def _channel(self, memes: list[GenerationInfo]) -> list[object]:
        # Its newest meme alone first: a channel that refuses is asked once, not per meme.
        first = await asyncio.gather(self._one(memes[0]), return_exceptions=True)
        rest = await asyncio.gather(*(self._one(g) for g in memes[1:]), return_exceptions=True)
        return [*first, *rest]

    async def _one(self, g: GenerationInfo) -> None:
        channel_id, message_id = g.channel_id, g.message_id
        assert channel_id is not None and message_id is not None  # run() keeps only these
        async with self._sem, self.lock(message_id):
            if channel_id in self.unreadable:
                self.unreadable[channel_id] += 1
                return
            try:
                # Same counts as the stored tally: taken as unchanged. (A swap of voters while
                # away, one 👍 for another, keeps the tally right and the older attribution.)
                shown = None if self.counts is None else await self.counts(channel_id, message_id)
                if shown == (g.up, g.down):
                    self.unchanged += 1
                    return
                up = await self.reactors(channel_id, message_id, self.up)
                down = await self.reactors(channel_id, message_id, self.down)
            except MessageGone:
                self.gone.append(message_id)
                return
            except ChannelUnreadable as e:
                if channel_id not in self.unreadable:
                    self.unreadable[channel_id] = 0
                    log.warning(
                        "cannot read reactions in channel %s (%s); its memes keep their "
                        "stored votes (the bot needs View Channel and Read Message History)",
                        channel_id,
                        e,
                    )
                self.unreadable[channel_id] += 1
                return
            up.discard(self.bot_user_id)
            down.discard(self.bot_user_id)
            # awaited first: `self.changes += await ...` reads the count before the await and
            # would drop what other memes' readings added meanwhile
            changed = (await self.store.reconcile(g.id, up, down)).total
            self.changes += changed
