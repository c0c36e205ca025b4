"""Real parts wired together for the bot's tests and bench/bot.py: the engine over loopback
HTTP (aiohttp TestServer), a migrated store (SQLite file or a throwaway PostgreSQL database),
the Discord stand-in, and the real discord.py bot pointed at it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from bot.app import MemeBot
from bot.store import Store, upgrade
from bot.store.scratch import DEFAULT_ADMIN_URL, scratch_database
from bot.votes import VoteBook
from memebot.settings import Settings
from tests.discord_standin import DiscordStandIn

POSTGRES_ADMIN_URL = os.environ.get("MEMEBOT_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


def bot_settings(tmp_path: Path, **over: Any) -> Settings:
    base = Settings.from_env(
        {
            "MEMEBOT_CACHE_DIR": str(tmp_path / "cache"),
            "MEMEBOT_IMAGES_DIR": str(tmp_path / "no-images"),
            "MEMEBOT_DOWNLOAD_IMAGES": "0",
            "MEMEBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            "MEMEBOT_MEME_COOLDOWN": "0",
            "MEMEBOT_QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
            "MEMEBOT_MODELS_DIR": str(tmp_path / "models"),
        }
    )
    return base.model_copy(update=over)


@asynccontextmanager
async def running_engine(model_path: Path, settings: Settings) -> AsyncIterator[str]:
    """The real engine on a loopback port; yields its base URL."""
    from engine.app import build_app
    from engine.decoding.loader import load_model
    from engine.service import MemeService

    service = MemeService(settings, load_model(model_path))
    server = TestServer(build_app(service), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def pg_available() -> bool:
    import asyncpg
    from sqlalchemy.exc import SQLAlchemyError

    try:
        async with scratch_database(POSTGRES_ADMIN_URL, "memebot_test_probe"):
            return True
    except (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


def postgres_url() -> AbstractAsyncContextManager[str]:
    """A throwaway PostgreSQL database (created here, dropped after)."""
    return scratch_database(POSTGRES_ADMIN_URL, "memebot_test_bot")


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
