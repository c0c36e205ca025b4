"""The real discord.py bot wired to real parts, for the bot's tests and bench/bot.py: the
Discord stand-in, a migrated store (SQLite file or a throwaway PostgreSQL database) and the
bot's settings (the engine comes from harness.engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.app import MemeBot
from bot.votes import VoteBook
from harness.discord_standin import DiscordStandIn
from harness.factories import scratch_settings
from memebot.settings import Settings
from memebot.store import Store, upgrade


def bot_settings(tmp_path: Path, **over: Any) -> Settings:
    """Settings for a bot (and its engine) that keep everything under `tmp_path`."""
    return scratch_settings(tmp_path, **over)


@asynccontextmanager
async def migrated_store(url: str) -> AsyncIterator[Store]:
    await upgrade(url)
    store = Store.from_url(url)
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def running_bot(
    standin: DiscordStandIn, settings: Settings, store: Store, **options: Any
) -> AsyncIterator[MemeBot]:
    """The real bot connected to the stand-in; yields once start-up reconciliation is done."""
    bot = MemeBot(
        settings,
        store=store,
        run_migrations=False,  # the store fixture migrated already
        guild_ready_timeout=0.05,
        **options,
    )
    with standin.patch_discord():
        task = asyncio.create_task(bot.start("stand-in-token"))
        waiter = asyncio.create_task(bot.wait_reconciled(1))
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:  # start() ended before the bot was up: raise its error
            waiter.cancel()
            await task
            raise RuntimeError("the bot stopped during start-up")
        try:
            yield bot
        finally:
            await bot.close()
            await task


@asynccontextmanager
async def standin() -> AsyncIterator[DiscordStandIn]:
    s = DiscordStandIn()
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def vote_book(bot: MemeBot) -> VoteBook:
    """The running bot's vote book (tests wait on its count of handled reaction events)."""
    return bot.vote_book()


Scenario = Callable[[DiscordStandIn, Settings, Store], Coroutine[Any, Any, None]]


def run_scenario(
    tiny_model: Path, tmp_path: Path, scenario: Scenario, *, engine: bool = True, **over: Any
) -> None:
    """`scenario(stand-in, settings, store)` with a running engine on `tiny_model` (unless
    `engine` is false); fails if the bot made a request the stand-in does not know."""
    from harness.engine import running_engine

    async def go() -> None:
        s = bot_settings(tmp_path, **over)
        async with standin() as api, migrated_store(s.database_url) as store:
            if engine:
                async with running_engine(tiny_model, s) as eng:
                    await scenario(api, s.model_copy(update={"engine_url": eng.url}), store)
            else:
                await scenario(api, s, store)
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())
