"""The bot's rating store: generations and 👍/👎 votes in SQLite or PostgreSQL (docs/BOT.md).

store = Store(make_engine(url))        # or Store.from_url(url)
await upgrade(url)                     # migrations (the bot runs this at start)
gid = await store.record_generation(NewGeneration(...))
await store.attach_message(gid, message.id)
await store.set_vote(message.id, user.id, +1)
"""

from __future__ import annotations

from bot.store.db import DatabaseError, make_engine
from bot.store.migrate import current, downgrade, upgrade
from bot.store.runs import RunInProgress
from bot.store.store import Store
from bot.store.types import (
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
    "make_engine",
    "upgrade",
]
