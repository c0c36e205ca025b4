"""A server's data when the bot leaves it: deleted `MEMEBOT_GUILD_RETENTION_DAYS` after the bot
was removed (the bot's hourly sweep, bot/cogs/servers.py), or at once with
`memebot data forget-guild ID`. Deleted: the server's taste versions and their files, its
memes, every vote on them, and its settings (Store.forget_guild).

Plain functions over the store and the settings; the clock is a parameter, so the sweep is
tested with any `now`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path

from memebot.logs import get_logger
from memebot.settings import Settings
from memebot.store import ForgottenGuild, Store
from memebot.store.tables import utcnow
from memebot.taste_file import clear_active

log = get_logger(__name__)

SWEEP_EVERY = timedelta(hours=1)


async def forget_guild(
    store: Store, settings: Settings, guild_id: int, *, left_before: datetime | None = None
) -> ForgottenGuild:
    """Deletes the server's data from the store, then its taste files (remove_taste_files).
    `left_before`: only if the bot left it before then (Store.forget_guild)."""
    gone = await store.forget_guild(guild_id, left_before=left_before)
    if not gone.total:
        return gone
    removed = remove_taste_files(gone.taste_paths, settings.models_dir)
    clear_active(settings.models_dir, guild_id)  # engines serve it the default from now on
    log.info(
        "forgot guild %s: %d taste versions (%d files), %d memes, %d votes",
        guild_id,
        gone.tastes,
        removed,
        gone.generations,
        gone.votes,
    )
    return gone


def remove_taste_files(paths: tuple[str, ...], models_dir: Path) -> int:
    """Deletes the taste files that lie under `models_dir`; returns how many were deleted.

    A path elsewhere is left alone (a store row is no licence to delete any file), and so is
    one missing here: this process may not see the models location the worker wrote to (a
    bot on another machine); the store's rows, which say which file is a taste, are gone
    either way.
    """
    root = models_dir.resolve()
    removed = 0
    for p in paths:
        path = Path(p).resolve()
        if not path.is_relative_to(root) or path == root:
            log.warning("not deleting taste file %s: outside the models location %s", p, root)
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        except IsADirectoryError:
            log.warning("not deleting taste path %s: a directory", p)
    return removed


def retention_cutoff(settings: Settings, now: datetime) -> datetime:
    """Servers left before this moment are due."""
    return now - timedelta(days=settings.guild_retention_days)


async def sweep_left_guilds(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    present: Collection[int] = (),
) -> list[ForgottenGuild]:
    """Forgets every server the bot left more than MEMEBOT_GUILD_RETENTION_DAYS before `now`
    (default: the current time) and did not rejoin. `present`: servers the caller knows the
    bot is in (the gateway listed them): kept, their clock stopped, even if the event that
    says so is still on its way to the store. Safe to run from several processes at once: a
    server forgotten twice is the second time a no-op."""
    cutoff = retention_cutoff(settings, now or utcnow())
    done = []
    for guild_id in await store.guilds_left_before(cutoff):
        if guild_id in present:
            await store.guild_present(guild_id)
            continue
        gone = await forget_guild(store, settings, guild_id, left_before=cutoff)
        if gone.total:
            done.append(gone)
    return done
