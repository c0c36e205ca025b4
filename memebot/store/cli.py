"""`memebot db upgrade|downgrade|current`: the schema of the store every process shares."""

from __future__ import annotations

import argparse
import asyncio

from memebot.settings import Settings


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    db = sub.add_parser(
        "db",
        help="migrate the store every process shares (SQLite or PostgreSQL)",
        description="Alembic migrations of the store (memes, votes, settings, model versions, "
        "retraining runs). The URL defaults to "
        "MEMEBOT_DATABASE_URL (docs/SETTINGS.md).",
    )
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    # The default is resolved when the command runs: showing it here (password masked) would
    # import SQLAlchemy for every `memebot` command, `engine` and `generate` included.
    url_help = "database URL (default: MEMEBOT_DATABASE_URL; `memebot db current` shows it)"

    up = db_sub.add_parser(
        "upgrade", help="migrate to the newest schema (the bot does it at start)"
    )
    up.add_argument("revision", nargs="?", default="head", help="target revision")
    up.add_argument("--url", default=None, help=url_help)
    up.set_defaults(func=cmd_upgrade)

    down = db_sub.add_parser("downgrade", help="migrate back to REV ('base' drops every table)")
    down.add_argument("revision", metavar="REV", help="target revision, e.g. -1 or base")
    down.add_argument("--url", default=None, help=url_help)
    down.set_defaults(func=cmd_downgrade)

    cur = db_sub.add_parser("current", help="show the database's schema revision")
    cur.add_argument("--url", default=None, help=url_help)
    cur.set_defaults(func=cmd_current)


def cmd_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from memebot.store import migrate

    url = args.url or settings.database_url
    asyncio.run(migrate.upgrade(url, args.revision))
    return _show(url)


def cmd_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    from memebot.store import migrate

    url = args.url or settings.database_url
    asyncio.run(migrate.downgrade(url, args.revision))
    return _show(url)


def cmd_current(args: argparse.Namespace, settings: Settings) -> int:
    return _show(args.url or settings.database_url)


def _show(url: str) -> int:
    from memebot.store import migrate
    from memebot.store.db import redacted

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
