"""The store every process shares (SQLite or PostgreSQL): the memes the bot posted and their
👍/👎 votes, guild settings, model versions, retraining runs, and each guild's taste versions
and when the bot left it (docs/ARCHITECTURE.md). The bot
writes memes and votes, the retrain worker reads them and records runs and versions, the
migrations read its tables' metadata.

store = Store(make_db(url))        # or Store.from_url(url)
await upgrade(url)                 # migrations (the bot runs this at start)
gid = await store.record_generation(NewGeneration(...))
await store.attach_message(gid, message.id)
await store.set_vote(message.id, user.id, +1)
"""

from __future__ import annotations

from memebot.store.db import DatabaseError, make_db
from memebot.store.migrate import current, downgrade, upgrade
from memebot.store.runs import RunInProgress
from memebot.store.store import Store
from memebot.store.tastes import NoTaste
from memebot.store.types import (
    ForgottenGuild,
    GenerationInfo,
    GuildSettings,
    ModelVersion,
    NewGeneration,
    RatedMeme,
    Reconciled,
    RunInfo,
    Stats,
    TasteVersion,
)

__all__ = [
    "DatabaseError",
    "ForgottenGuild",
    "GenerationInfo",
    "GuildSettings",
    "ModelVersion",
    "NewGeneration",
    "NoTaste",
    "RatedMeme",
    "Reconciled",
    "RunInProgress",
    "RunInfo",
    "Stats",
    "Store",
    "TasteVersion",
    "current",
    "downgrade",
    "make_db",
    "upgrade",
]
