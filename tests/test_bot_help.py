"""/help against the real bot and the Discord stand-in: one ephemeral page naming every
registered command, the votes, the 🔁 button and who may retrain; and the page's builder on
real discord.py commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.help import MAX_HELP, help_text
from harness.bot import run_scenario as run
from harness.bot import running_bot
from harness.discord_standin import DiscordStandIn
from memebot.settings import Settings
from memebot.store import Store


@pytest.mark.slow
def test_help_is_one_ephemeral_page_naming_every_command(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            registered = {c["name"] for c in api.command_puts[-1][1]}
            assert "help" in registered
            rec = await api.answered(await api.invoke("help"))
            assert not rec.deferred, "no I/O: answered at once"
            (reply,) = rec.replies
            assert reply.ephemeral and len(reply.content) <= MAX_HELP
            for name in registered:
                assert f"`/{name}" in reply.content, name
            for word in ("👍", "👎", "🔁", "owner", "administrators", "base:true"):
                assert word in reply.content, word

    run(tiny_model, tmp_path, scenario, engine=False)


def test_help_text_lists_options_and_puts_admin_commands_apart() -> None:
    async def noop(interaction: discord.Interaction, name: str, times: int = 1) -> None:
        """Say a name."""

    everyone: app_commands.Command[Any, Any, None] = app_commands.Command(
        name="hello", description="Say a name.", callback=noop
    )
    admin: app_commands.Command[Any, Any, None] = app_commands.Command(
        name="purge", description="Purge things.", callback=noop
    )
    admin.default_permissions = discord.Permissions(administrator=True)
    group = app_commands.Group(name="tools", description="tools")
    group.add_command(app_commands.Command(name="ping", description="Pong.", callback=noop))
    text = help_text([admin, everyone, group], up="<:yes:1>", down="<:no:2>")
    assert "`/hello name [times]`: Say a name." in text
    assert "`/tools ping name [times]`: Pong." in text
    head, admins = text.split("**For server admins**")
    assert "/purge" in admins and "/purge" not in head and "/hello" in head
    assert "<:yes:1>" in text and "<:no:2>" in text
