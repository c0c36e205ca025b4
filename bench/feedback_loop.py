"""The retraining loop's proof: a simulated community makes the model write what it likes.

    python bench/feedback_loop.py [--json] [--rounds 3] [--captions 500] [--plot FILE]

A scripted rater likes captions with a hidden property (a word from TOPIC: food or school)
and dislikes the others; each caption gets `--raters` votes, each flipped with probability
`--noise`. Captions are written as the bot writes them: the options `/meme` sends for its
default style (bot/memes.py STYLE_OPTIONS; `--style` for another style it offers), with the
project's shipped retrain settings (nothing set for the bench but where things are). Rounds:

  round 0      generate `--captions` captions through the real engine over HTTP (the active
               model), votes written through the real store: the baseline upvote share
  round k > 0  a finetune run through the real queue (huey, SQLite) and a real worker
               (`memebot train`/`eval` subprocesses) -> gate -> promotion (engine hot reload),
               then generate and rate again with whatever model is live

Target: the upvote share at least doubles within 3 rounds while base val nats/char
worsens by at most 0.05. `--json` prints upvote_share_by_round, val_nats_by_round (the live
model's, on the gate's base val captions), the runs' outcomes and seconds. CPU-heavy: each
round fine-tunes the real model (minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.memes import STYLE_OPTIONS
from harness.engine import free_port, start_engine_process, stop_engine_process
from memebot.choices import DEFAULT_STYLE, STYLES
from memebot.settings import Settings
from memebot.store import NewGeneration, Store, upgrade
from retrain.promotion import point_active
from retrain.queue import RunQueue
from retrain.requests import request_run
from retrain.subprocesses import Subprocess
from retrain.worker import execute_run

# Food and school: about 8% of the corpus's val captions use one of these words.
TOPIC = frozenset(
    {
        "pizza",
        "food",
        "eat",
        "eating",
        "eats",
        "ate",
        "hungry",
        "cake",
        "cookie",
        "cookies",
        "burger",
        "tacos",
        "taco",
        "bacon",
        "coffee",
        "beer",
        "cheese",
        "chocolate",
        "lunch",
        "dinner",
        "breakfast",
        "snack",
        "snacks",
        "sandwich",
        "fries",
        "donut",
        "donuts",
        "school",
        "teacher",
        "homework",
        "class",
        "test",
        "exam",
        "student",
        "students",
        "college",
    }
)
WORDS = re.compile(r"[a-z]+")


def likes(boxes: list[str]) -> bool:
    """The hidden property the community rewards."""
    return any(w in TOPIC for b in boxes for w in WORDS.findall(b.lower()))


def rate(boxes: list[str], rng: random.Random, *, raters: int, noise: float) -> list[int]:
    want = 1 if likes(boxes) else -1
    return [-want if rng.random() < noise else want for _ in range(raters)]


async def generate_and_rate(
    store: Store, url: str, round_no: int, args: argparse.Namespace, rng: random.Random
) -> dict[str, Any]:
    """`args.captions` captions through the engine (16 at a time), each rated by the raters."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/v1/templates", params={"limit": "25"}) as r:
            templates = [t["slug"] for t in (await r.json())["templates"]]
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> tuple[str, list[str], str]:
            template = templates[i % len(templates)]
            body = {"template": template, "image": False, "seed": round_no * 100_000 + i}
            body |= STYLE_OPTIONS[args.style].to_body()
            async with sem, http.post(f"{url}/v1/memes", json=body) as r:
                data = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"engine answered {r.status}: {data}")
                return template, list(data["boxes"]), str(data["model_version"])

        made = await asyncio.gather(*(one(i) for i in range(args.captions)))
    up = down = 0
    base_message = (round_no + 1) * 10_000_000
    for i, (template, boxes, version) in enumerate(made):
        message = base_message + i
        await store.record_generation(
            NewGeneration(
                channel_id=1,
                user_id=1,
                template=template,
                boxes=boxes,
                model_version=version,
                message_id=message,
                guild_id=1,
            )
        )
        for user, v in enumerate(rate(boxes, rng, raters=args.raters, noise=args.noise)):
            await store.set_vote(message, 1000 + user, v)
            up, down = up + (v > 0), down + (v < 0)
    return {
        "upvote_share": up / (up + down),
        "liked_share": sum(likes(b) for _, b, _ in made) / len(made),
        "model_version": made[0][2],
        "examples": [" / ".join(b) for _, b, _ in made[:5]],
    }


async def run_loop(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    models = tmp / "models"
    source = Settings.from_env().model_dir
    point_active(models, source)
    overrides = {
        "MEMEBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'memebot.db'}",
        "MEMEBOT_QUEUE_URL": f"sqlite:///{tmp / 'queue.db'}",
        "MEMEBOT_MODELS_DIR": str(models),
        "MEMEBOT_MODEL": str(source),
        "MEMEBOT_ENGINE_URLS": url,
        "MEMEBOT_DOWNLOAD_IMAGES": "0",
    }
    if args.steps:
        overrides["MEMEBOT_RETRAIN_STEPS"] = str(args.steps)
    env = os.environ | overrides
    settings = Settings.from_env(env)
    await upgrade(settings.database_url)
    engine = start_engine_process(
        models / "active", env=env | {"MEMEBOT_DECODE_THREADS": "1"}, port=port, timeout=180
    )
    store = Store.from_url(settings.database_url)
    queue = RunQueue(
        settings.queue_url,
        execute=lambda run_id: execute_run(run_id, settings, proc=Subprocess(env=env)),
    )
    rng = random.Random(args.seed)
    rounds: list[dict[str, Any]] = []
    try:
        t0 = time.monotonic()
        rounds.append(await generate_and_rate(store, url, 0, args, rng) | {"run": None})
        for k in range(1, args.rounds + 1):
            started = time.monotonic()
            run = await request_run(store, queue, requested_by="bench")
            await asyncio.to_thread(queue.work_once)
            done = await store.run(run.id)
            assert done is not None
            outcome = {
                "id": done.id,
                "status": done.status,
                "error": done.error,
                "gate": {k2: done.gate.get(k2) for k2 in ("candidate", "active", "reasons")},
                "counts": done.gate.get("counts") or done.progress.get("curation"),
                "seconds": round(time.monotonic() - started, 1),
            }
            print(f"round {k}: run #{done.id} {done.status} {done.error or ''}", file=sys.stderr)
            rounds.append(await generate_and_rate(store, url, k, args, rng) | {"run": outcome})
        seconds = time.monotonic() - t0
    finally:
        queue.close()
        await store.close()
        stop_engine_process(engine.proc)
    return summarise(rounds, seconds) | {"style": args.style}


def summarise(rounds: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Per round: the upvote share and the live model's base val nats/char (from the gate's
    scores: the candidate's when promoted, else the active's)."""
    val: list[float | None] = []
    live: float | None = None
    for r in rounds:
        run = r["run"]
        if run and run["gate"].get("active"):
            live = run["gate"]["active"]["val_nats"]
            if run["status"] == "succeeded":
                live = run["gate"]["candidate"]["val_nats"]
        val.append(live)
    # Round 0 has no gate yet: it is the first run's "active" figure.
    first = next((r["run"] for r in rounds if r["run"] and r["run"]["gate"].get("active")), None)
    if val and first is not None:
        val[0] = first["gate"]["active"]["val_nats"]
    shares = [r["upvote_share"] for r in rounds]
    return {
        "upvote_share_by_round": shares,
        "val_nats_by_round": val,
        "liked_share_by_round": [r["liked_share"] for r in rounds],
        "model_version_by_round": [r["model_version"] for r in rounds],
        "runs": [r["run"] for r in rounds[1:]],
        "examples_by_round": [r["examples"] for r in rounds],
        "share_ratio": shares[-1] / shares[0] if shares and shares[0] else None,
        "seconds": round(seconds, 1),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = result["upvote_share_by_round"]
    rounds = list(range(len(shares)))
    fig, ax1 = plt.subplots(figsize=(6.5, 4))
    ax1.plot(rounds, shares, "o-", color="tab:green", label="upvote share")
    ax1.axhline(2 * shares[0], ls=":", color="tab:green", label="target: 2 x round 0")
    ax1.set_xlabel("round (0 = before any retrain)")
    ax1.set_ylabel("upvote share")
    ax1.set_ylim(0, max(max(shares), 2 * shares[0]) * 1.15)
    ax1.set_xticks(rounds)
    ax2 = ax1.twinx()
    vals = [v if v is not None else float("nan") for v in result["val_nats_by_round"]]
    ax2.plot(rounds, vals, "s--", color="tab:blue", label="base val nats/char")
    if vals and vals[0] == vals[0]:  # not NaN: the budget line from round 0
        ax2.axhline(vals[0] + 0.05, ls=":", color="tab:blue", label="val budget: round 0 + 0.05")
        ax2.set_ylim(vals[0] - 0.05, vals[0] + 0.08)
    ax2.set_ylabel("base val nats/char")
    fig.legend(loc="upper center", ncol=2, fontsize="small")
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--captions", type=int, default=500, help="captions generated per round")
    p.add_argument("--raters", type=int, default=3, help="votes per caption")
    p.add_argument("--noise", type=float, default=0.05, help="chance a vote is flipped")
    p.add_argument("--steps", type=int, default=0, help="MEMEBOT_RETRAIN_STEPS for the bench")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--style", choices=STYLES, default=DEFAULT_STYLE, help="a /meme style (default: the bot's)"
    )
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of both curves")
    p.add_argument("--tmp", type=Path, default=None, help="scratch directory parent")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="memebot-loop-", dir=args.tmp) as tmp:
        result = asyncio.run(run_loop(args, Path(tmp)))
    if args.plot:
        plot(result, args.plot)
    if args.json:
        print(json.dumps(result))
    else:
        for k, (s, v) in enumerate(
            zip(result["upvote_share_by_round"], result["val_nats_by_round"], strict=True)
        ):
            print(
                f"round {k}: upvote share {s:.3f}  val nats/char {v if v is None else f'{v:.4f}'}"
            )
        print(f"share ratio {result['share_ratio']}; {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
