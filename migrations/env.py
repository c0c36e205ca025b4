"""Alembic environment (async template) for the store (memebot/store: memes, votes, settings,
model versions, retraining runs).

The database URL comes, in this order, from a connection handed over by memebot.store.migrate
(config.attributes["connection"]), `alembic -x url=...`, config.attributes["url"], or the
MEMEBOT_DATABASE_URL setting. alembic.ini holds no URL and no secret.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from memebot.settings import Settings
from memebot.store.db import make_db
from memebot.store.tables import Base

config = context.config

# Only the `alembic` command configures logging from alembic.ini; from code (the bot's start-up)
# the application's logging is left alone. Existing loggers stay enabled either way.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.attributes.get("url")
        or config.get_main_option("sqlalchemy.url")
        or Settings.from_env().database_url
    )


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: batch mode recreates tables
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    # Foreign keys off on SQLite: a batch migration drops and recreates tables, which with
    # foreign keys on would cascade-delete the votes.
    db = make_db(_url(), foreign_keys=False, poolclass=pool.NullPool)
    try:
        async with db.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await db.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
