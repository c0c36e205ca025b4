"""Rating-store benchmark: votes written per second, each vote its own transaction, N concurrent
voters, on a fresh SQLite file and a throwaway PostgreSQL database (created and dropped here).

    python bench/store.py [--json] [--voters 32] [--votes 3000] [--no-postgres]

`measure_votes_per_s(url, ...)` is reusable (bench/bot.py). Target: >= 500 votes/s on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.databases import DEFAULT_ADMIN_URL, scratch_database
from memebot.store import NewGeneration, Store, upgrade


async def measure_votes_per_s(
    url: str, *, voters: int = 32, votes: int = 3000, messages: int = 20
) -> dict[str, Any]:
    """Migrates `url`, posts `messages` memes, then `voters` concurrent users cast `votes` votes
    (set_vote: one upsert transaction each, alternating 👍/👎 so every vote changes a row)."""
    await upgrade(url)
    store = Store.from_url(url)
    try:
        for m in range(messages):
            await store.record_generation(
                NewGeneration(channel_id=1, user_id=1, template="bench", boxes=["a"], message_id=m)
            )
        per_voter = votes // voters

        async def voter(user: int) -> None:
            for i in range(per_voter):
                await store.set_vote(i % messages, user, 1 if (i // messages) % 2 else -1)

        await voter(10_000)  # warm the pool's connections before timing
        t0 = time.perf_counter()
        await asyncio.gather(*(voter(u) for u in range(voters)))
        seconds = time.perf_counter() - t0
        written = per_voter * voters
        return {"votes": written, "voters": voters, "seconds": seconds, "per_s": written / seconds}
    finally:
        await store.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="memebot-bench-", dir=args.tmp) as tmp:
        sqlite = await measure_votes_per_s(
            f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", voters=args.voters, votes=args.votes
        )
    result["votes_per_s"] = round(sqlite["per_s"], 1)
    result["sqlite"] = sqlite
    if not args.no_postgres:
        async with scratch_database(args.postgres_admin_url, prefix="memebot_bench") as url:
            pg = await measure_votes_per_s(url, voters=args.voters, votes=args.votes)
        result["votes_per_s_postgres"] = round(pg["per_s"], 1)
        result["postgresql"] = pg
    result["voters"] = args.voters
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="one line of JSON")
    p.add_argument("--voters", type=int, default=32, help="concurrent voters")
    p.add_argument("--votes", type=int, default=3000, help="votes per database")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("MEMEBOT_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="a URL allowed to CREATE/DROP DATABASE",
    )
    p.add_argument("--tmp", default=None, help="directory for the SQLite file (default: $TMPDIR)")
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
