"""The store every process shares (SQLite or PostgreSQL): the memes the bot posted and their
👍/👎 votes, guild settings, model versions and retraining runs (docs/ARCHITECTURE.md). The bot
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
from memebot.store.types import (
    GenerationInfo,
    GuildSettings,
    ModelVersion,
    NewGeneration,
    Reconciled,
    RunInfo,
    Stats,
)

__all__ = [
    "DatabaseError",
    "GenerationInfo",
    "GuildSettings",
    "ModelVersion",
    "NewGeneration",
    "Reconciled",
    "RunInProgress",
    "RunInfo",
    "Stats",
    "Store",
    "current",
    "downgrade",
    "make_db",
    "upgrade",
]
