"""The servers cog (bot/cogs/servers.py) in the real bot against the Discord stand-in and a real
store: removal starts a server's retention clock, being added back (or found at start-up)
stops it, an outage does neither, and the sweep runs once the gateway listed the servers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.cogs.servers import Servers
from harness.bot import bot_settings, migrated_store, running_bot, standin
from memebot.store import NewGeneration, Store

ELSEWHERE = 123_456_789_012_345_678  # a server the stand-in does not list


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the store never reached the expected state")
        await asyncio.sleep(0.02)


async def a_meme(store: Store, guild_id: int, message_id: int) -> None:
    await store.record_generation(
        NewGeneration(
            guild_id=guild_id,
            channel_id=1,
            user_id=2,
            template="drake",
            boxes=["a", "b"],
            message_id=message_id,
        )
    )


def test_removal_rejoin_and_outage(tmp_path: Path) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path, guild_retention_days=30.0)
        async with standin() as api, migrated_store(s.database_url) as store:
            gid = api.guild_id
            await a_meme(store, gid, 1)
            # The bot was removed once and added back while it was offline; and it was
            # removed from ELSEWHERE while offline (no event ever came).
            await store.guild_left(gid, datetime.now(UTC) - timedelta(days=3))
            await a_meme(store, ELSEWHERE, 2)
            async with running_bot(api, s, store) as bot:

                async def rejoined() -> bool:
                    return await store.guild_left_at(gid) is None

                async def elsewhere_left() -> bool:
                    return await store.guild_left_at(ELSEWHERE) is not None

                await eventually(rejoined)
                await eventually(elsewhere_left)

                before = datetime.now(UTC)
                await api.remove_bot()

                async def removed() -> bool:
                    return await store.guild_left_at(gid) is not None

                await eventually(removed)
                left_at = await store.guild_left_at(gid)
                assert left_at is not None and left_at >= before - timedelta(seconds=1)
                await eventually(lambda: _true(bot.get_guild(gid) is None))

                await api.add_bot()  # added back before the deadline
                await eventually(rejoined)
                assert (await store.stats(gid)).generations == 1

                await api.remove_bot(outage=True)  # unavailable is not removed
                await eventually(lambda: _true(_unavailable(bot.get_guild(gid))))
                assert await store.guild_left_at(gid) is None
                await api.add_bot()
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())


def test_the_sweep_runs_after_start_up_and_keeps_a_listed_server(tmp_path: Path) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path, guild_retention_days=30.0)
        async with standin() as api, migrated_store(s.database_url) as store:
            long_ago = datetime.now(UTC) - timedelta(days=31)
            await a_meme(store, api.guild_id, 1)
            await store.guild_left(api.guild_id, long_ago)  # added back while offline
            await a_meme(store, ELSEWHERE, 2)
            await store.guild_left(ELSEWHERE, long_ago)  # gone for good
            async with running_bot(api, s, store) as bot:
                # (an extension is loaded as a module of its own: not isinstance of Servers)
                cog = bot.get_cog("Servers")
                assert cog is not None and type(cog).__name__ == Servers.__name__
                await eventually(lambda: _true(getattr(cog, "sweeps", 0) >= 1))
                assert (await store.stats(ELSEWHERE)).generations == 0
                assert (await store.stats(api.guild_id)).generations == 1
                assert await store.guild_left_at(api.guild_id) is None

    asyncio.run(go())


async def _true(value: bool) -> bool:
    return value


def _unavailable(guild: object) -> bool:
    return bool(getattr(guild, "unavailable", False))
