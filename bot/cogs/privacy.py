"""/forget-me: deletes the caller's votes and generations (Discord's developer policy expects
deletion on request)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MemeBot


class Privacy(commands.Cog):
    def __init__(self, bot: MemeBot) -> None:
        self.bot = bot

    @app_commands.command(name="forget-me")
    async def forget_me(self, interaction: discord.Interaction) -> None:
        """Delete every vote you cast and every meme you made from the bot's records."""
        await interaction.response.defer(ephemeral=True, thinking=True)  # Discord's 3 s
        votes, gens = await self.bot.store.forget_user(interaction.user.id)
        await interaction.followup.send(
            f"Done: I deleted {votes} vote(s) and {gens} meme record(s) of yours. "
            "Your reactions already on memes stay on Discord but are ignored from now on "
            "(reactions on memes made later count again). "
            "Each server's taste leaves your votes out from its next retrain. "
            "Memes already posted stay in the channels; delete those messages if you want.",
            ephemeral=True,
        )


async def setup(bot: MemeBot) -> None:
    await bot.add_cog(Privacy(bot))
