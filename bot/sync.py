"""Slash command sync: to MEMEBOT_DISCORD_GUILDS (instant) or globally (Discord takes up to an
hour), only when the command set or the target changed (Discord rate-limits syncs), and clean:
the set registered where the bot no longer syncs is removed, so no command shows twice.

A guild that refuses (403: the bot was invited without the `applications.commands` scope) is
logged with the fix and skipped; the bot starts either way, and the next start tries again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
from discord.ext import commands

from memebot.logs import get_logger

log = get_logger(__name__)
# The permissions docs/BOT.md asks for: View Channel, Send Messages, Attach Files, Add
# Reactions, Read Message History.
INVITE_PERMISSIONS = 101440


def invite_url(application_id: int | None) -> str:
    return (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )


@dataclass
class SyncState:
    """What the last complete sync did: its digest and the guilds it synced to (none:
    global). Kept in `$MEMEBOT_CACHE_DIR/discord-commands-<app id>.json`."""

    digest: str = ""
    guilds: list[int] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> SyncState:
        try:
            data = json.loads(path.read_text())
            return cls(str(data["digest"]), [int(g) for g in data["guilds"]])
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: sync
            return cls()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"digest": self.digest, "guilds": self.guilds}) + "\n")
        tmp.replace(path)


async def sync_commands(bot: commands.Bot, guild_ids: Sequence[int], state_dir: Path) -> bool:
    """Syncs to `guild_ids` (empty: globally); the state is kept in `state_dir`. Returns
    whether anything was synced (False: unchanged since the last sync)."""
    if bot.shard_id not in (None, 0):
        return False  # one process syncs; the others serve the same commands
    payload = [c.to_dict(bot.tree) for c in bot.tree.get_commands()]
    guilds = list(guild_ids)
    key = json.dumps(
        {"app": bot.application_id, "guilds": guilds, "commands": payload}, sort_keys=True
    )
    digest = hashlib.sha256(key.encode()).hexdigest()
    path = state_dir / f"discord-commands-{bot.application_id}.json"
    last = SyncState.load(path)
    if last.digest == digest:
        log.info("slash commands unchanged since the last sync; not syncing")
        return False
    ok = True
    if guilds:
        for gid in guilds:
            guild = discord.Object(id=gid)
            bot.tree.copy_global_to(guild=guild)
            ok = await _guarded(bot, gid, bot.tree.sync(guild=guild)) and ok
        # Global commands from a global sync before would show beside the guild's own.
        ok = await _clear(bot, None) and ok
        log.info("synced %d commands to guilds %s", len(payload), guilds)
    else:
        try:
            await bot.tree.sync()
        except discord.HTTPException as e:
            log.error("could not sync the slash commands globally (%s %s)", e.status, e.text)
            return False
        log.info("synced %d commands globally (Discord shows them within an hour)", len(payload))
    for gid in last.guilds:  # guilds synced before and no longer: their copies go
        if gid not in guilds:
            await _clear(bot, gid)  # a guild that refuses (or was left) is not asked again
    if ok:  # else the next start syncs again (and retries what failed)
        SyncState(digest, guilds).save(path)
    return True


async def _guarded(bot: commands.Bot, guild_id: int, call: Any) -> bool:
    """Runs one guild's sync call; a 403 or 404 there is logged with the fix and skipped."""
    try:
        await call
    except discord.Forbidden as e:
        log.warning(
            "cannot manage slash commands in guild %s (403 %s): re-invite the bot with the "
            "applications.commands scope: %s",
            guild_id,
            e.text or "Forbidden",
            invite_url(bot.application_id),
        )
        return False
    except discord.NotFound as e:
        log.warning("guild %s is unknown to Discord or left (404 %s): skipped", guild_id, e.text)
        return False
    return True


async def _clear(bot: commands.Bot, guild_id: int | None) -> bool:
    """Removes the commands registered globally (None) or in one guild, if there are any (a
    read first: most starts have nothing to remove and need no write)."""
    app = bot.application_id
    assert app is not None  # set by login, before setup_hook
    if guild_id is None:
        try:
            if await bot.http.get_global_commands(app):
                await bot.http.bulk_upsert_global_commands(app, [])
                log.info("removed the global commands (now synced to guilds)")
        except discord.HTTPException as e:
            log.warning("could not remove the global commands (%s %s)", e.status, e.text)
            return False
        return True

    async def clear() -> None:
        if await bot.http.get_guild_commands(app, guild_id):
            await bot.http.bulk_upsert_guild_commands(app, guild_id, [])
            log.info("removed the commands synced to guild %s before", guild_id)

    return await _guarded(bot, guild_id, clear())
