"""One reconciliation pass (bot/reconcile.py) on the real store (SQLite): its count of changes
is every meme's, however the memes' readings interleave."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord

from bot.reconcile import Reconciliation
from harness.bot import migrated_store
from memebot.store import NewGeneration, Reconciled, Store

UP, DOWN = discord.PartialEmoji(name="👍"), discord.PartialEmoji(name="👎")
BOT_USER = 42


class SlowStore(Store):
    """The real store, each reconcile held back so the later-started memes finish first (the
    readings then overlap the way a rate-limited pass makes them)."""

    def __init__(self, store: Store, delays: dict[int, float]) -> None:
        self.__dict__.update(store.__dict__)  # the same engine and sessions as `store`
        self.delays = delays

    async def reconcile(self, generation_id: int, up: set[int], down: set[int]) -> Reconciled:
        await asyncio.sleep(self.delays[generation_id])
        return await super().reconcile(generation_id, up, down)


def test_the_count_of_changes_is_every_memes_when_readings_overlap(tmp_path: Path) -> None:
    async def main() -> None:
        async with migrated_store(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}") as store:
            gens = []
            for i in range(6):
                gens.append(
                    await store.record_generation(
                        NewGeneration(
                            channel_id=7,
                            guild_id=1,
                            user_id=800100,
                            template="drake",
                            boxes=[f"c{i}", "b"],
                            message_id=1000 + i,
                        )
                    )
                )
            # while the bot was away: two 👍 on every meme (no stored votes), so 2 changes each
            reactors = {(1000 + i, UP.name): {1, 2, BOT_USER} for i in range(6)}
            delays = {g: 0.01 * (len(gens) - k) for k, g in enumerate(gens)}
            since = datetime.now(UTC) - timedelta(hours=1)
            infos = await store.recent_generations(since)
            locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

            async def read(channel: int, message: int, emoji: discord.PartialEmoji) -> set[int]:
                await asyncio.sleep(0)
                return set(reactors.get((message, emoji.name), set()))

            pass_ = Reconciliation(
                SlowStore(store, delays),
                (UP, DOWN),
                BOT_USER,
                lambda m: locks[m],
                read,
                concurrency=4,
            )
            assert await pass_.run(infos) == 12
            for g in gens:
                assert await store.votes(g) == {1: 1, 2: 1}

    asyncio.run(main())
