"""Throwaway databases and queues for the tests and benchmarks: PostgreSQL databases created
through an admin URL and dropped after (nothing to set up beyond a running server), SQLite
files, and huey queues on the test Redis. The `throwaway_*` helpers skip a test (fail it in CI)
when their server is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TypeVar

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from harness.skips import skip_or_fail
from memebot.store import Store, upgrade
from memebot.store.db import make_db, redacted

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def _admin(admin_url: str, sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    db = make_db(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with db.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await db.dispose()


async def create_database(admin_url: str, prefix: str = "memebot_test") -> str:
    """Creates `<prefix>_<random hex>` and returns its URL (same server and credentials)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    # FORCE: a test that failed half-way may still hold connections.
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def scratch_database(
    admin_url: str = DEFAULT_ADMIN_URL, prefix: str = "memebot_test"
) -> AsyncIterator[str]:
    url = await create_database(admin_url, prefix)
    try:
        yield url
    finally:
        await drop_database(admin_url, url)


POSTGRES_ADMIN_URL = os.environ.get("MEMEBOT_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
_postgres_down: list[str] = []  # the reason, once PostgreSQL was found unreachable


@contextlib.contextmanager
def throwaway_postgres(*, migrate: bool = True) -> Iterator[str]:
    """A fresh database `memebot_test_<hex>` on the test PostgreSQL (migrated to head unless
    `migrate=False`); dropped afterwards. Skips (fails in CI) when PostgreSQL is unreachable."""
    if _postgres_down:
        skip_or_fail(_postgres_down[0])
    try:
        url = asyncio.run(create_database(POSTGRES_ADMIN_URL))
    except (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        where = redacted(POSTGRES_ADMIN_URL)
        _postgres_down.append(f"PostgreSQL not usable at {where} (MEMEBOT_TEST_POSTGRES_URL): {e}")
        skip_or_fail(_postgres_down[0])
    try:
        if migrate:
            asyncio.run(upgrade(url))
        yield url
    finally:
        asyncio.run(drop_database(POSTGRES_ADMIN_URL, url))


REDIS_URL = os.environ.get("MEMEBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@contextlib.contextmanager
def throwaway_redis_queue() -> Iterator[tuple[str, str]]:
    """(Redis URL, a fresh huey queue name) on the test Redis; the queue's keys are deleted
    afterwards. Skips (fails in CI) when Redis is unreachable or its client is not installed."""
    try:
        import redis
    except ImportError:
        skip_or_fail("the redis client is not installed (pip install 'memebot[redis]')")
    name = f"memebot_test_{uuid.uuid4().hex[:12]}"
    conn = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        conn.ping()
    except (OSError, redis.RedisError) as e:
        skip_or_fail(f"Redis not usable at {REDIS_URL} (MEMEBOT_TEST_REDIS_URL): {e}")
    try:
        yield REDIS_URL, name
    finally:
        for key in conn.scan_iter(match=f"huey.*{name}*"):
            conn.delete(key)
        conn.close()


@contextlib.contextmanager
def throwaway_sqlite(tmp_path: Path, *, migrate: bool = True) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'memebot.db'}"
    if migrate:
        asyncio.run(upgrade(url))
    yield url


def throwaway_db(
    kind: str, tmp_path: Path, *, migrate: bool = True
) -> contextlib.AbstractContextManager[str]:
    """A throwaway store database of `kind` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        return throwaway_sqlite(tmp_path, migrate=migrate)
    return throwaway_postgres(migrate=migrate)


async def pg_available() -> bool:
    try:
        async with scratch_database(POSTGRES_ADMIN_URL, "memebot_test_probe"):
            return True
    except (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


def postgres_url() -> AbstractAsyncContextManager[str]:
    """A throwaway PostgreSQL database (created here, dropped after)."""
    return scratch_database(POSTGRES_ADMIN_URL, "memebot_test_bot")


T = TypeVar("T")


def with_store(url: str, body: Callable[[Store], Awaitable[T]]) -> T:
    """`body(store)` on a Store at `url` (opened and closed around it), from sync code."""

    async def main() -> T:
        store = Store.from_url(url)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())
