"""Throwaway PostgreSQL databases (tests and bench/store.py): created through an admin URL,
dropped after, so nothing needs setting up beyond a running server."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.store.db import make_engine

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def _admin(admin_url: str, sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


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
