"""/help: one ephemeral page of the commands, the votes, the 🔁 button and who may retrain
(bot/help.py builds it from the registered commands)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MemeBot
from bot.help import help_text


class Help(commands.Cog):
    def __init__(self, bot: MemeBot) -> None:
        self.bot = bot

    @app_commands.command(name="help")
    async def help(self, interaction: discord.Interaction) -> None:
        """What the bot does: its commands, the votes and the 🔁 button."""
        # No I/O: answered at once (nothing to defer for).
        book = self.bot.vote_book()
        text = help_text(
            self.bot.tree.get_commands(), up=str(book.emoji.up), down=str(book.emoji.down)
        )
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: MemeBot) -> None:
    await bot.add_cog(Help(bot))
