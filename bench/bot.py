"""Bot benchmark: the whole /meme path through the Discord stand-in, every part real.

interaction (gateway) -> defer -> engine over HTTP (caption + render) -> store -> followup with
the image (multipart upload) -> 👍/👎 reactions -> message id stored. Latency is from sending
INTERACTION_CREATE to the stand-in receiving the followup, at 1 and 32 concurrent users; then
reaction events sent back to back and the votes written per second; last, 32 users again with
Discord's rate limits on in the stand-in (per-route buckets, the global limit, 429s), each
reacting to their meme: `meme_p95_ms_32_ratelimited`, and every /meme answered.

The engine, the stand-in and the bot share this one process, so on a shared machine the rates
follow the machine's load as much as the code. `cpu_ms_per_meme_32` and `cpu_ms_per_vote` (the
process's CPU time, every thread, over those phases) move much less with other jobs: compare
trees by them, and by rates only back to back. `loadavg_1m` is the machine's load at the start.

    python bench/bot.py [--json] [--model DIR] [--database URL] [--memes 40] [--votes 2000]
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from memebot.settings import Settings

TEMPLATES = ["two-buttons", "distracted-boyfriend", "success-kid", "y-u-no"]


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


async def one_meme(api: Any, i: int, user: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    rec = await api.invoke("meme", {"template": TEMPLATES[i % len(TEMPLATES)]}, user_id=user)
    await api.wait_until(lambda: bool(rec.followups), timeout=120)
    elapsed = (time.perf_counter() - t0) * 1000
    if not rec.followups[0].attachments:
        raise RuntimeError(f"/meme answered without an image: {rec.followups[0].content}")
    return elapsed, rec.followups[0].id


async def ratelimited(api: Any, book: Any, per_user: int) -> dict[str, Any]:
    """32 users again with Discord's rate limits on in the stand-in (per-route buckets: the
    bot's 👍/👎 adds are 1 per 0.25 s per channel; the global 50 requests/s), each user
    reacting to the meme they got. Every /meme must be answered, and every meme get its
    reactions and its vote."""
    from harness.discord_standin import RateLimits

    api.rate_limits = RateLimits()
    start = book.handled
    t0 = time.perf_counter()

    async def user(u: int) -> list[tuple[float, int]]:
        out = []
        for i in range(per_user):
            ms, mid = await one_meme(api, u + i, 5000 + u)
            await api.react(mid, "👍", 5000 + u)
            out.append((ms, mid))
        return out

    done = [x for xs in await asyncio.gather(*(user(u) for u in range(32))) for x in xs]
    answered_s = time.perf_counter() - t0
    messages = [mid for _ms, mid in done]
    await api.wait_until(lambda: all(len(api.bot_reactions(m)) == 2 for m in messages), timeout=600)
    reacted_s = time.perf_counter() - t0
    await book.wait_handled(start + len(messages))
    limits = api.rate_limits.limited
    api.rate_limits = None
    return {
        "meme_p50_ms_32_ratelimited": round(pct([ms for ms, _ in done], 50), 1),
        "meme_p95_ms_32_ratelimited": round(pct([ms for ms, _ in done], 95), 1),
        "memes_answered_ratelimited": len(done),
        "memes_asked_ratelimited": 32 * per_user,
        "answered_s_ratelimited": round(answered_s, 1),
        "reactions_done_s_ratelimited": round(reacted_s, 1),
        "responses_429_ratelimited": len(limits),
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from harness.bot import bot_settings, migrated_store, running_bot, standin, vote_book
    from harness.engine import running_engine

    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None  # not on Windows
    tmp = Path(tempfile.mkdtemp(prefix="memebot-bench-bot-"))
    s = bot_settings(tmp)
    if args.database:
        s = s.model_copy(update={"database_url": args.database})
    async with (
        standin() as api,
        migrated_store(s.database_url) as store,
        running_engine(args.model, s) as eng,
    ):
        s = s.model_copy(update={"engine_url": eng.url})
        async with running_bot(api, s, store) as bot:
            for i in range(4):  # warm-up: template images loaded, connections open
                await one_meme(api, i, 1)
            single = []
            messages = []
            for i in range(args.memes):
                ms, mid = await one_meme(api, i, 2)
                single.append(ms)
                messages.append(mid)
            per_user = max(1, args.memes // 8)

            async def user(u: int) -> list[float]:
                return [(await one_meme(api, u + i, 100 + u))[0] for i in range(per_user)]

            t0, c0 = time.perf_counter(), time.process_time()
            concurrent = [
                ms for xs in await asyncio.gather(*(user(u) for u in range(32))) for ms in xs
            ]
            wall32, cpu32 = time.perf_counter() - t0, time.process_time() - c0
            await api.wait_until(lambda: all(len(api.bot_reactions(m)) == 2 for m in messages))

            book = vote_book(bot)
            start = book.handled
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(args.votes):
                mid = messages[i % len(messages)]
                await api.react(mid, "👍" if i % 3 else "👎", 10_000 + i % 500)
            await book.wait_handled(start + args.votes)
            vote_s, vote_cpu = time.perf_counter() - t0, time.process_time() - c0

            limited = await ratelimited(api, book, per_user)
    return {
        "database": s.database_url.split("://")[0],
        "model": str(args.model),
        "meme_p50_ms": round(pct(single, 50), 1),
        "meme_p95_ms": round(pct(single, 95), 1),
        "meme_p50_ms_32": round(pct(concurrent, 50), 1),
        "meme_p95_ms_32": round(pct(concurrent, 95), 1),
        "memes_per_s_32": round(len(concurrent) / wall32, 1),
        "votes_per_s": round(args.votes / vote_s, 1),
        "cpu_ms_per_meme_32": round(cpu32 * 1000 / len(concurrent), 2),
        "cpu_ms_per_vote": round(vote_cpu * 1000 / args.votes, 3),
        "loadavg_1m": load,
        "memes_timed": len(single) + len(concurrent),
        "votes_timed": args.votes,
        **limited,
    }


def main() -> None:
    settings = Settings.from_env()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", type=Path, default=settings.model_dir, help="artifact directory")
    p.add_argument(
        "--database", default=None, help="store URL (default: a fresh SQLite file in /tmp)"
    )
    p.add_argument("--memes", type=int, default=40, help="memes timed one after another")
    p.add_argument("--votes", type=int, default=2000, help="reaction events sent")
    p.add_argument("--json", action="store_true", help="one line of JSON")
    args = p.parse_args()
    result = asyncio.run(bench(args))
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
