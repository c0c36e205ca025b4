"""Asking for a server's taste run and rolling its taste back: what /retrain and /model call
(the run itself is retrain/taste_run.py, in the worker). Imports the store, the queue, taste
curation and the taste files only: nothing that fits."""

from __future__ import annotations

import asyncio

from memebot.settings import Settings
from memebot.store import RunInfo, Store
from memebot.store.tastes import NoTaste
from memebot.store.types import TasteVersion
from memebot.taste_file import clear_active, taste_file, write_active
from retrain.queue import RunQueue
from retrain.requests import enqueue
from retrain.taste_curation import TasteRules, curate_guild

TASTE_MODE = "finetune"  # a run's mode column; a taste run has one way of fitting


async def request_taste_run(
    store: Store,
    queue: RunQueue,
    guild_id: int,
    *,
    requested_by: str | None = None,
    channel_id: int | None = None,
    message_id: int | None = None,
    rules: TasteRules | None = None,
) -> RunInfo:
    """Records a queued taste run of the server and enqueues it. NotEnoughVotes (how many
    more) if too few of its memes count; RunInProgress if one of its taste runs is already
    queued or running (two admins at once: the store's unique index lets one through)."""
    # NotEnoughVotes: nothing is queued.
    await curate_guild(store, guild_id, rules=rules or TasteRules())
    run = await store.create_run(
        TASTE_MODE,
        kind="taste",
        requested_by=requested_by,
        guild_id=guild_id,
        channel_id=channel_id,
        message_id=message_id,
    )
    return await enqueue(store, queue, run)


async def rollback_taste(store: Store, settings: Settings, guild_id: int) -> TasteVersion | None:
    """The server's taste back to the version before the active one (None: back to the
    default taste): the store first, then the pointer. NoTaste if it has no taste of its own;
    a previous version whose file is gone is refused before anything changes."""
    active = await store.active_taste(guild_id)
    if active is None:
        raise NoTaste("this server has no taste of its own to roll back")
    prev = active.previous_version
    if prev is not None and not taste_file(settings.models_dir, guild_id, prev).is_file():
        raise NoTaste(f"this server's taste v{prev} has no file any more: nothing rolled back")
    back = await store.rollback_taste(guild_id)
    if back is None:
        await asyncio.to_thread(clear_active, settings.models_dir, guild_id)
    else:
        await asyncio.to_thread(write_active, settings.models_dir, guild_id, back.version)
    return back


def describe_taste(tv: TasteVersion | None) -> str:
    """One line for /model: the server's taste, or that the default serves it."""
    if tv is None:
        return "This server's taste: the default (no taste of its own yet; `/retrain` fits one)"
    auc = f", held-out score {tv.heldout_auc:.3f}" if tv.heldout_auc is not None else ""
    return (
        f"This server's taste: v{tv.version} ({tv.created_at:%Y-%m-%d %H:%M} UTC,"
        f" {tv.n_votes} votes{auc}; on base `{tv.base_version}`)"
    )
