"""/top and /stats: reading the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MemeBot
from bot.cogs.memes import Memes
from bot.permissions import readable_channels
from engine.client import EngineError
from memebot.store import GenerationInfo, Stats

Period = Literal["day", "week", "month", "all"]
PERIODS: dict[str, timedelta | None] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "all": None,
}


def format_top(rows: list[GenerationInfo], *, period: str, template: str | None) -> str:
    scope = f" for `{template}`" if template else ""
    if not rows:
        return f"No rated memes{scope} in this period yet: vote with the reactions under a meme."
    lines = [f"**Best-rated memes{scope} ({period})**"]
    for i, g in enumerate(rows, 1):
        caption = " / ".join(b for b in g.boxes if b) or "…"
        link = (
            f" [jump](https://discord.com/channels/{g.guild_id}/{g.channel_id}/{g.message_id})"
            if g.guild_id and g.channel_id and g.message_id
            else ""
        )
        lines.append(
            f"{i}. **{g.score:+d}** ({g.up}👍 {g.down}👎) `{g.template}`: "
            f"{discord.utils.escape_markdown(caption)[:150]}{link}"
        )
    return "\n".join(lines)


def format_stats(s: Stats, *, engine_model: str | None) -> str:
    share = f"{s.upvote_share:.0%}" if s.upvote_share is not None else "n/a"
    return "\n".join(
        [
            "**Meme stats for this server** (the channels you can see)",
            f"Memes made: {s.generations}",
            f"Votes: {s.votes} ({s.up}👍 {s.down}👎, {share} up)",
            f"Model of the latest meme: `{s.last_model_version or 'none yet'}`",
            f"Model the engine serves now: `{engine_model or 'engine not reachable'}`",
        ]
    )


class Info(commands.Cog):
    def __init__(self, bot: MemeBot) -> None:
        self.bot = bot

    @app_commands.command(name="top")
    @app_commands.guild_only()  # in a DM guild_id is None: every guild's memes
    @app_commands.describe(
        template="only memes of this template (its slug, e.g. distracted-boyfriend)",
        period="how far back to look (default: week)",
    )
    async def top(
        self,
        interaction: discord.Interaction,
        template: app_commands.Range[str, 1, 100] | None = None,
        period: Period = "week",
    ) -> None:
        """The best-rated memes on this server."""
        await interaction.response.defer(thinking=True)
        delta = PERIODS[period]
        since = datetime.now(UTC) - delta if delta is not None else None
        # Only memes from channels the caller can read: a private channel's captions stay there.
        rows = await self.bot.store.top(
            interaction.guild_id,
            template=template,
            since=since,
            limit=10,
            channels=readable_channels(interaction),
        )
        await interaction.followup.send(format_top(rows, period=period, template=template))

    @top.autocomplete("template")
    async def top_template(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        memes = self.bot.get_cog("Memes")  # the same source (and cache) as /meme's
        assert isinstance(memes, Memes)
        return await memes.template_choices(current)

    @app_commands.command(name="stats")
    @app_commands.guild_only()  # in a DM guild_id is None: every guild's memes
    async def stats(self, interaction: discord.Interaction) -> None:
        """How many memes and votes this server has, and which model wrote them."""
        await interaction.response.defer(thinking=True)
        s = await self.bot.store.stats(
            interaction.guild_id, channels=readable_channels(interaction)
        )
        try:
            engine_model = (await self.bot.get_engine().ready()).model_version
        except EngineError:  # stats still answer when the engine is down
            engine_model = None
        await interaction.followup.send(format_stats(s, engine_model=engine_model))


async def setup(bot: MemeBot) -> None:
    await bot.add_cog(Info(bot))
