"""Admin commands: /retrain, /model (info, rollback) and the per-guild /settings.

Guarded twice: `default_permissions(administrator=True)` hides them from members, and the bot
checks again (a guild may hand a command to others in its integration settings)."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MemeBot, admin_only
from bot.store import GuildSettings

NOT_YET = (
    "Retraining from votes is not available yet: the votes are being kept for it. "
    "Until then a new model is trained offline with `memebot train` and loaded by the engine."
)


def format_settings(gs: GuildSettings) -> str:
    channels = ", ".join(f"<#{c}>" for c in gs.allowed_channel_ids) or "every channel"
    return "\n".join(
        [
            "**Meme settings for this server**",
            f"Content filter: `{gs.filter_level}`",
            f"Default style: `{gs.default_style or 'calibrated'}`",
            f"Memes allowed in: {channels}",
        ]
    )


class Admin(commands.Cog):
    def __init__(self, bot: MemeBot) -> None:
        self.bot = bot

    @app_commands.command(name="retrain")
    @app_commands.default_permissions(administrator=True)
    @app_commands.guild_only()
    @admin_only()
    async def retrain(self, interaction: discord.Interaction) -> None:
        """Retrain the caption model from this server's votes (admins only)."""
        await interaction.response.send_message(NOT_YET, ephemeral=True)

    @app_commands.command(name="model")
    @app_commands.describe(rollback="go back to the previous model version")
    @app_commands.default_permissions(administrator=True)
    @app_commands.guild_only()
    @admin_only()
    async def model(self, interaction: discord.Interaction, rollback: bool = False) -> None:
        """Which caption model is serving, and the versions kept (admins only)."""
        try:
            serving = (await self.bot.get_engine().ready()).model_version
        except Exception:  # noqa: BLE001 - the answer says the engine is not reachable
            serving = "the engine is not reachable"
        versions = await self.bot.store.model_versions()
        lines = [f"Engine serves: `{serving}`"]
        lines += [
            f"{'▶' if v.active else '•'} `{v.version}` ({v.created_at:%Y-%m-%d})"
            for v in versions[:10]
        ] or ["No trained versions recorded yet."]
        if rollback:
            lines.append(f"Rollback is not available yet. {NOT_YET}")
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @app_commands.command(name="settings")
    @app_commands.describe(
        content_filter="off, standard (slurs, sexual content, self-harm) or strict (any swearing)",
        default_style="the style /meme uses when none is given",
        allow_channel="add a channel where /meme works (none set: every channel)",
        remove_channel="remove a channel from the list",
        all_channels="true: /meme works in every channel again",
    )
    @app_commands.default_permissions(administrator=True)
    @app_commands.guild_only()
    @admin_only()
    async def settings(
        self,
        interaction: discord.Interaction,
        content_filter: Literal["off", "standard", "strict"] | None = None,
        default_style: Literal["calibrated", "threshold", "beam", "greedy", "creative"]
        | None = None,
        allow_channel: discord.TextChannel | None = None,
        remove_channel: discord.TextChannel | None = None,
        all_channels: bool = False,
    ) -> None:
        """Show or change this server's meme settings (admins only)."""
        assert interaction.guild_id is not None  # guild_only
        store = self.bot.store
        gs = await store.guild_settings(interaction.guild_id)
        changes: dict[str, object] = {}
        if content_filter is not None:
            changes["filter_level"] = content_filter
        if default_style is not None:
            changes["default_style"] = default_style
        channels = set(gs.allowed_channel_ids)
        if all_channels:
            channels.clear()
        if allow_channel is not None:
            channels.add(allow_channel.id)
        if remove_channel is not None:
            channels.discard(remove_channel.id)
        if channels != set(gs.allowed_channel_ids):
            changes["allowed_channel_ids"] = sorted(channels)
        if changes:
            gs = await store.update_guild_settings(interaction.guild_id, **changes)
        await interaction.response.send_message(format_settings(gs), ephemeral=True)


async def setup(bot: MemeBot) -> None:
    await bot.add_cog(Admin(bot))
