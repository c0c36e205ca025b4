"""`memebot db upgrade|downgrade|current`: the rating store's schema (docs/BOT.md, Store)."""

from __future__ import annotations

import argparse
import asyncio

from bot.store import migrate
from bot.store.db import redacted
from memebot.settings import Settings


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    db = sub.add_parser(
        "db",
        help="migrate the bot's rating store (SQLite or PostgreSQL)",
        description="Alembic migrations of the rating store. The URL defaults to "
        "MEMEBOT_DATABASE_URL (docs/SETTINGS.md).",
    )
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    url_help = f"database URL (default: {redacted(settings.database_url)})"

    up = db_sub.add_parser(
        "upgrade", help="migrate to the newest schema (the bot does it at start)"
    )
    up.add_argument("revision", nargs="?", default="head", help="target revision")
    up.add_argument("--url", default=settings.database_url, help=url_help)
    up.set_defaults(func=cmd_upgrade)

    down = db_sub.add_parser("downgrade", help="migrate back to REV ('base' drops every table)")
    down.add_argument("revision", metavar="REV", help="target revision, e.g. -1 or base")
    down.add_argument("--url", default=settings.database_url, help=url_help)
    down.set_defaults(func=cmd_downgrade)

    cur = db_sub.add_parser("current", help="show the database's schema revision")
    cur.add_argument("--url", default=settings.database_url, help=url_help)
    cur.set_defaults(func=cmd_current)


def cmd_upgrade(args: argparse.Namespace, _settings: Settings) -> int:
    asyncio.run(migrate.upgrade(args.url, args.revision))
    return _show(args.url)


def cmd_downgrade(args: argparse.Namespace, _settings: Settings) -> int:
    asyncio.run(migrate.downgrade(args.url, args.revision))
    return _show(args.url)


def cmd_current(args: argparse.Namespace, _settings: Settings) -> int:
    return _show(args.url)


def _show(url: str) -> int:
    rev = asyncio.run(migrate.current(url))
    head = migrate.head_revision()
    if rev is None:
        state = "empty (no schema); run `memebot db upgrade`"
    elif rev == head:
        state = f"{rev} (head)"
    else:
        state = f"{rev} (head is {head}; run `memebot db upgrade`)"
    print(f"{redacted(url)}: {state}")
    return 0
