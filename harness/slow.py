"""Slow and stuck parts for the bot's deadline tests, all real: an HTTP server on loopback that
answers every engine route the way a busy engine does (503 with Retry-After) or never (a hung
engine), and a PostgreSQL database whose tables another transaction holds locked (every query
on them waits until the lock is released, as behind a long migration or a stuck writer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import create_async_engine

from memebot.store.tables import Base

# Every table of the store (the bot reads or writes each): locked together, no command gets
# through. From the models, so a table added later is locked too.
STORE_TABLES = tuple(Base.metadata.tables)


class HungEngine:
    """Where the stuck engine listens, and how many requests are waiting on it."""

    def __init__(self) -> None:
        self.url = ""
        self.waiting = 0
        self.release = asyncio.Event()  # set: every waiting request ends (the server closes)


@asynccontextmanager
async def hung_engine(*, overloaded: bool = False) -> AsyncIterator[HungEngine]:
    """An engine stand-in on every route: with `overloaded`, 503 with `Retry-After: 7` at once;
    otherwise requests are accepted and never answered (the bot's timeout must end the wait)."""
    hung = HungEngine()

    async def handler(request: web.Request) -> web.StreamResponse:
        if overloaded:
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "7"})
        hung.waiting += 1
        try:
            await hung.release.wait()
        finally:
            hung.waiting -= 1
        return web.json_response({"error": "released"}, status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    hung.url = str(server.make_url("")).rstrip("/")
    try:
        yield hung
    finally:
        hung.release.set()
        await server.close()


@asynccontextmanager
async def locked_tables(url: str, tables: tuple[str, ...] = STORE_TABLES) -> AsyncIterator[None]:
    """Hold ACCESS EXCLUSIVE locks on `tables` of the PostgreSQL database at `url` until the
    block ends: reads and writes of those tables by anyone else wait meanwhile. (SQLite in WAL
    mode never blocks a reader, so a slow database is modelled on PostgreSQL.)"""
    if not url.startswith("postgresql"):
        raise ValueError(f"locked_tables needs a PostgreSQL URL, not {url.split(':', 1)[0]}")
    db = create_async_engine(url)
    try:
        async with db.connect() as conn:
            await conn.exec_driver_sql(
                f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE"  # names from code
            )
            try:
                yield
            finally:
                await conn.rollback()  # releases the locks
    finally:
        await db.dispose()
