"""The store's database handle (`db`, a SQLAlchemy AsyncEngine): the same code on SQLite (one
file, WAL) and PostgreSQL (asyncpg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from memebot.errors import MemebotError, UsageError

# Milliseconds a SQLite writer waits for another process's write lock before "database is
# locked". Within one process the Store queues its own writes (see Store), so this only covers
# other processes (a CLI `memebot db ...` beside a running bot).
SQLITE_BUSY_TIMEOUT_MS = 10_000

CONNECT_TIMEOUT_S = 10

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class DatabaseError(MemebotError):
    """The database cannot be reached or refused an operation (bad URL host, missing database,
    failed migration). The message is one line and never shows the password."""

    @classmethod
    def from_exception(cls, url: str, e: BaseException) -> DatabaseError:
        detail = str(getattr(e, "orig", None) or e).strip().splitlines()
        return cls(f"database {redacted(url)}: {detail[0] if detail else type(e).__name__}")


def make_db(url: str, *, foreign_keys: bool = True, **kwargs: Any) -> AsyncEngine:
    """The database at `url` (an AsyncEngine); SQLite connections get WAL, busy_timeout and
    foreign keys.

    `foreign_keys=False` is for migrations only: SQLite batch migrations recreate tables, and
    dropping a referenced table with foreign keys on would cascade-delete every vote.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise UsageError(f"database URL {redacted(url)!r} is not a URL: {e}") from e
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise UsageError(
            f"database URL {redacted(url)!r}: use one of "
            + ", ".join(f"{d}://..." for d in SUPPORTED_DRIVERS)
        )
    if parsed.drivername.startswith("postgresql"):
        # Fail within seconds on an unreachable server (asyncpg's default is 60 s).
        kwargs.setdefault("connect_args", {"timeout": CONNECT_TIMEOUT_S})
    try:
        db = create_async_engine(parsed, **kwargs)
    except NoSuchModuleError as e:  # pragma: no cover - both drivers are dependencies
        raise UsageError(f"database URL {redacted(url)!r}: {e}") from e
    if db.dialect.name == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # A fresh install's ./var does not exist yet; SQLite would say "unable to open".
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise DatabaseError.from_exception(url, e) from e
        _sqlite_pragmas(db, foreign_keys=foreign_keys)
    return db


def _sqlite_pragmas(db: AsyncEngine, *, foreign_keys: bool) -> None:
    @event.listens_for(db.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: readers never block the writer. synchronous=NORMAL (the usual WAL pairing): a
        # committed vote survives the bot crashing; a power cut may lose the last commits
        # (FULL's fsync per vote costs 1-5 ms here), and the start-up reconcile restores
        # those from the messages' reactions.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()


def redacted(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
