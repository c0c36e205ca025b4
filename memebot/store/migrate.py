"""Alembic from code: `await upgrade(url)` (the bot at start, `memebot db upgrade`), downgrade,
current. The migration scripts live in migrations/ at the repository root."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from memebot.errors import UsageError
from memebot.settings import REPO_ROOT
from memebot.store.db import DatabaseError, make_db, redacted

MIGRATIONS_DIR = REPO_ROOT / "migrations"
MIGRATION_LOCK = 0x6D656D65626F74  # PostgreSQL advisory lock key ("memebot")


def alembic_config() -> Config:
    """A Config without alembic.ini: the URL never goes through a file or configparser."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["configure_logger"] = False
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrates the database at `url` up to `revision` (creating a SQLite file if needed)."""
    await _run(url, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(url: str, revision: str) -> None:
    """Migrates down to `revision` ("base": drops every table of the store)."""
    await _run(url, lambda cfg: command.downgrade(cfg, revision))


async def current(url: str) -> str | None:
    """The database's revision (None: never migrated)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    db = make_db(url, foreign_keys=False, poolclass=pool.NullPool)
    try:
        with _one_line_errors(url):
            async with db.connect() as conn:
                return await conn.run_sync(read)
    finally:
        await db.dispose()


async def require_head(url: str) -> None:
    """UsageError (one line) unless the database at `url` has the newest schema: the commands
    that only use the store (the bot migrates it at start) say what to run instead of failing
    on a missing table."""
    rev, head = await current(url), head_revision()
    if rev != head:
        state = "has no schema" if rev is None else f"is at revision {rev}, not {head}"
        raise UsageError(f"database {redacted(url)} {state}: run `memebot db upgrade`")


async def _run(url: str, action: Callable[[Config], Any]) -> None:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        action(cfg)

    # Foreign keys off on SQLite while migrating (see migrations/env.py).
    db = make_db(url, foreign_keys=False, poolclass=pool.NullPool)
    try:
        with _one_line_errors(url):
            async with db.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Shards starting together migrate one after the other (the others then
                    # find the schema at head); released when this transaction ends.
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    )
                await conn.run_sync(run)
    finally:
        await db.dispose()


@contextlib.contextmanager
def _one_line_errors(url: str) -> Iterator[None]:
    """Connection failures and refused migrations become typed one-line errors."""
    try:
        yield
    except CommandError as e:  # unknown revision and the like: the user's input
        raise UsageError(f"revision: {e}") from e
    # asyncpg raises its own errors (not wrapped by SQLAlchemy) while connecting.
    except (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise DatabaseError.from_exception(url, e) from e


__all__ = [
    "MIGRATIONS_DIR",
    "current",
    "downgrade",
    "head_revision",
    "redacted",
    "require_head",
    "upgrade",
]
