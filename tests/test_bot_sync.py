"""bot/sync.py with the real discord.py client against the Discord stand-in (no engine is
needed): switching between per-guild and global sync leaves each command registered once,
an unchanged set is not synced again, and a guild that answers 403 is logged with the fix
while the bot starts anyway (and tries again at the next start)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.discord_standin import DiscordStandIn
from memebot.settings import Settings
from memebot.store import Store

OTHER_GUILD = 900_777

Scenario = Callable[[DiscordStandIn, Settings, Store], Coroutine[Any, Any, None]]


def run(tmp_path: Path, scenario: Scenario) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path, engine_url="http://127.0.0.1:9")
        async with standin() as api, migrated_store(s.database_url) as store:
            await scenario(api, s, store)
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())


def once_each(names: list[str]) -> bool:
    return bool(names) and len(names) == len(set(names)) and "meme" in names


def test_switching_between_guild_and_global_sync_leaves_no_duplicates(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        guilds = s.model_copy(update={"discord_guilds": (api.guild_id, OTHER_GUILD)})
        everywhere = s.model_copy(update={"discord_guilds": ()})
        async with running_bot(api, guilds, store) as bot:
            assert bot.synced is True
        assert once_each(api.visible_commands(api.guild_id))
        assert api.registered.get(None, []) == []
        assert once_each(api.visible_commands(OTHER_GUILD))

        async with running_bot(api, everywhere, store) as bot:
            assert bot.synced is True
        assert api.registered[api.guild_id] == [] and api.registered[OTHER_GUILD] == []
        assert once_each(api.visible_commands(api.guild_id))
        assert once_each(api.visible_commands(None))

        puts = len(api.command_puts)
        async with running_bot(api, everywhere, store) as bot:
            assert bot.synced is False  # unchanged: nothing sent
        assert len(api.command_puts) == puts

        # Back to one guild: the global set goes, the guild dropped from the list is cleared.
        one = s.model_copy(update={"discord_guilds": (api.guild_id,)})
        async with running_bot(api, one, store):
            pass
        assert api.registered[None] == []
        assert once_each(api.visible_commands(api.guild_id))
        assert api.visible_commands(OTHER_GUILD) == []
        # Clearing read first: the other guild had nothing left, so no write went there.
        other = f"/applications/{api.app_id}/guilds/{OTHER_GUILD}/commands"
        assert sum(path == other for path, _ in api.command_puts[puts:]) == 0

    run(tmp_path, scenario)


def test_a_guild_refusing_the_sync_is_logged_with_the_fix_and_the_bot_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        api.forbid_command_sync.add(OTHER_GUILD)
        guilds = s.model_copy(update={"discord_guilds": (OTHER_GUILD, api.guild_id)})
        with caplog.at_level(logging.WARNING, logger="memebot"):
            async with running_bot(api, guilds, store) as bot:
                assert bot.synced is True
                # The bot works: the guild that accepted has every command.
                assert once_each(api.visible_commands(api.guild_id))
                top = await api.answered(await api.invoke("top"))
                assert top.replies
        (warning,) = [r for r in caplog.records if r.name == "memebot.bot.sync"]
        text = warning.getMessage()
        assert str(OTHER_GUILD) in text and "403" in text
        assert "applications.commands" in text and f"client_id={api.app_id}" in text
        assert warning.exc_info is None and "\n" not in text

        # Not recorded as done: the next start tries the refusing guild again.
        refused = f"PUT /applications/{api.app_id}/guilds/{OTHER_GUILD}/commands"
        tries = api.requests.count(refused)
        api.forbid_command_sync.clear()  # the admin re-invited the bot with the scope
        async with running_bot(api, guilds, store) as bot:
            assert bot.synced is True
        assert api.requests.count(refused) == tries + 1
        assert once_each(api.visible_commands(OTHER_GUILD))
        async with running_bot(api, guilds, store) as bot:
            assert bot.synced is False

    run(tmp_path, scenario)
