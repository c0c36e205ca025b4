"""The servers the bot is in: when it is removed from one, the store records when (its
retention clock); when it is added back, or finds the server at start-up, the clock stops. An
hourly sweep deletes the data of servers left more than MEMEBOT_GUILD_RETENTION_DAYS ago
(retrain/guilds.py; docs/RETRAIN.md)."""

from __future__ import annotations

import asyncio
import contextlib

import discord
from discord.ext import commands

from bot.app import MemeBot
from memebot.logs import get_logger
from retrain.guilds import SWEEP_EVERY, sweep_left_guilds

log = get_logger(__name__)


class Servers(commands.Cog):
    def __init__(self, bot: MemeBot) -> None:
        self.bot = bot
        self.sweep_every = SWEEP_EVERY.total_seconds()
        self.sweeps = 0  # sweeps finished (tests wait on it)
        self._sweep_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def cog_load(self) -> None:
        # One process sweeps (as one syncs the commands): the others would only repeat it.
        if self.bot.shard_id in (None, 0):
            self._sweep_task = asyncio.create_task(self._sweep_loop())

    async def cog_unload(self) -> None:
        task = self._sweep_task
        if task is None:
            return
        if not self.bot.is_ready():
            task.cancel()  # still waiting for the gateway: nothing under way
        else:
            # A sweep under way ends first (a few statements): cancelled in the middle of a
            # query, its connection would be left unreturned while the store closes.
            self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        # Removed (kicked, banned, or the server deleted); an outage is on_guild_unavailable.
        await self.bot.store.guild_left(guild.id)
        log.info(
            "removed from guild %s: its data is deleted in %g days unless added back",
            guild.id,
            self.bot.settings.guild_retention_days,
        )

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        if await self.bot.store.guild_present(guild.id):
            log.info("added back to guild %s before its data was deleted: kept", guild.id)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        # At start-up: a server that added the bot back while it was offline.
        if await self.bot.store.guild_present(guild.id):
            log.info("guild %s has the bot again: its data is kept", guild.id)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Servers the store knows but the gateway did not list were left while the bot was
        offline (no event came): their clocks start now. A server listed later (it was only
        unavailable) stops its clock again."""
        listed = {g.id for g in self.bot.guilds}
        count = self.bot.shard_count or 1
        shard = self.bot.shard_id or 0
        try:
            known = await self.bot.store.known_guilds()
            for guild_id in sorted(known - listed):
                if count == 1 or (guild_id >> 22) % count == shard:  # this shard's servers
                    await self.bot.store.guild_left(guild_id)
        except Exception:
            # A missed clock start only delays a deletion; the bot serves on.
            log.exception("could not check for servers left while the bot was offline")

    async def _sweep_loop(self) -> None:
        # After the gateway listed the servers: one that added the bot back while it was
        # offline has its clock stopped before the first sweep could delete its data.
        await self.bot.wait_until_ready()
        while not self._stop.is_set():
            await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.sweep_every)

    async def sweep(self) -> None:
        try:
            present = {g.id for g in self.bot.guilds}
            gone = await sweep_left_guilds(self.bot.store, self.bot.settings, present=present)
            for g in gone:
                log.info(
                    "deleted the data of guild %s (left over %g days ago): %d memes, %d votes",
                    g.guild_id,
                    self.bot.settings.guild_retention_days,
                    g.generations,
                    g.votes,
                )
        except Exception:
            # A failed sweep (database down) is retried at the next one; the bot serves on.
            log.exception("the sweep of servers left long ago failed")
        finally:
            self.sweeps += 1


async def setup(bot: MemeBot) -> None:
    await bot.add_cog(Servers(bot))
