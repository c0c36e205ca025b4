"""Per-server taste's proof: each simulated server teaches its own bot what it likes.

    python bench/communities.py [--json] [--smoke] [--rounds 3] [--memes 200] [--plot FILE]
                                [--style STYLE] [--sample N]

Servers (Discord guilds), each with a hidden taste the others do not share (TASTES): one likes
food and school words, one likes questions, one likes short captions (a length band), and a
control server, which likes family words, votes every round but never retrains. The control
asks for its round 0 memes again every round (same seeds, same votes drawn: common random
numbers), so its share moves only if what it is served moves; `control-fresh`, the same taste
with fresh samples each round, shows how far 200 memes' shares wander by chance. Each taste is
liked by 5-15% of the shipped model's captions with the bot's default style (`--sample N`
measures it). Everything runs as the bot would run it, with the project's shipped settings:

  memes   through the real engine over HTTP (`memebot engine`), the options the bot builds for
          its default style (bot/memes.py: MemeAsk), the server named in the request as the
          bot names it (the guild id, a string of digits), recorded in the real store
  votes   each meme gets 0 to 3 votes (mean 1.0) from the server's members other than its
          requester; a member votes 👍 on a caption the taste likes and 👎 otherwise, each vote
          flipped with probability `--noise` (0.1)
  retrain after each round, each retraining server's /retrain: a queued taste run (the real
          queue, huey on SQLite) executed by the worker's path (retrain/worker.py), which fits,
          gates and promotes the server's taste; the engine picks it up without a reload

Round 0 is before any retrain. Targets: every retraining server's upvote share at least
doubles within 3 rounds; the control's stays within +-15% of its round 0; a taste retrain
takes <= 60 s; the base model's val nats/char (`memebot eval`, the gate's val captions) is the
same before and after (a taste is not a base retrain). `--smoke`: 1 round of 40 memes;
`--style`: another style /meme offers (default: the bot's).
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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.caption_stats import distinct2, oov_share, word_counts
from bench.feedback_loop import TOPIC
from bot.memes import MemeAsk
from harness.engine import free_port, start_engine_process, stop_engine_process
from memebot.choices import DEFAULT_STYLE, STYLES, Style
from memebot.errors import MemebotError
from memebot.settings import Settings
from memebot.store import NewGeneration, Store, upgrade

WORDS = re.compile(r"[a-z]+")
# Food and school words (the base loop's); the shares of the shipped model's captions each
# taste likes, with the bot's default style: `--sample`, docs/BENCHMARKS.md.
FOOD_SCHOOL = TOPIC
SHORT_CHARS = 26  # a caption of at most this many characters (boxes together) is "short"
FAMILY = frozenset(
    {
        "mom",
        "dad",
        "mother",
        "father",
        "parents",
        "brother",
        "sister",
        "family",
        "wife",
        "girlfriend",
        "boyfriend",
        "kids",
        "son",
        "daughter",
        "grandma",
        "friend",
        "friends",
    }
)
# P(a meme gets 0, 1, 2, 3 votes): mean 1.0, most memes zero to two, as in real channels.
VOTE_COUNTS = (0.35, 0.40, 0.15, 0.10)
MEMBERS = 40  # per server; member 0 of a server asks for every meme (its votes never count)


def _words(boxes: list[str]) -> set[str]:
    return {w for b in boxes for w in WORDS.findall(b.lower())}


def likes_food_school(boxes: list[str]) -> bool:
    return bool(_words(boxes) & FOOD_SCHOOL)


def likes_questions(boxes: list[str]) -> bool:
    return any("?" in b for b in boxes)


def likes_short(boxes: list[str]) -> bool:
    return sum(len(b) for b in boxes) <= SHORT_CHARS


def likes_family(boxes: list[str]) -> bool:
    return bool(_words(boxes) & FAMILY)


@dataclass(frozen=True)
class Taste:
    name: str
    likes: Callable[[list[str]], bool]
    retrains: bool = True
    # False: the same seeds and the same vote draws every round (common random numbers), so a
    # change in the server's share can only come from a change in the captions it is served.
    fresh: bool = True


TASTES = (
    Taste("food-school", likes_food_school),
    Taste("questions", likes_questions),
    Taste("short", likes_short),
    # The control: its round 0 captions again every round, so its share stays put unless
    # another server's retrains reach its captions.
    Taste("control", likes_family, retrains=False, fresh=False),
    # The same taste with fresh samples each round: how far 200 memes' shares wander by chance.
    Taste("control-fresh", likes_family, retrains=False),
)


def guild_id(index: int) -> int:
    """A snowflake-sized guild id per server (larger than a JSON double holds exactly)."""
    return 900_000_000_000_000_001 + index


def member_id(guild: int, member: int) -> int:
    """A user id per server and member (members of different servers are different users)."""
    return 10**15 + (guild % 10**6) * 1000 + member


def draw_votes(
    boxes: list[str], taste: Taste, rng: random.Random, *, noise: float = 0.1
) -> list[int]:
    """One meme's votes from its server's members: 0-3 of them (VOTE_COUNTS), each +1 if the
    taste likes the caption else -1, flipped with probability `noise`."""
    n = rng.choices(range(len(VOTE_COUNTS)), weights=VOTE_COUNTS)[0]
    want = 1 if taste.likes(boxes) else -1
    return [-want if rng.random() < noise else want for _ in range(n)]


def upvote_share(votes: list[int]) -> float | None:
    """Share of the votes that are 👍 (None: no votes)."""
    return sum(v > 0 for v in votes) / len(votes) if votes else None


def meme_body(template: str, seed: int, guild: int, style: Style = DEFAULT_STYLE) -> dict[str, Any]:
    """The engine request the bot makes for /meme in `guild` with its default style; the bench
    asks for no image (rendering does not change the caption)."""
    options = MemeAsk(template=template, style=style).engine_options(seed).to_body()
    return options | {"template": template, "server": str(guild), "image": False}


async def templates_of(http: aiohttp.ClientSession, url: str) -> list[str]:
    async with http.get(f"{url}/v1/templates", params={"limit": "25"}) as r:
        return [t["slug"] for t in (await r.json())["templates"]]


async def make_memes(
    url: str,
    guild: int,
    n: int,
    first_seed: int,
    *,
    server: bool = True,
    style: Style = DEFAULT_STYLE,
) -> list[tuple[str, list[str], str]]:
    """`n` memes for `guild` through the engine (16 at a time): (template, boxes, version)."""
    async with aiohttp.ClientSession() as http:
        templates = await templates_of(http, url)
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> tuple[str, list[str], str]:
            template = templates[i % len(templates)]
            body = meme_body(template, first_seed + i, guild, style)
            if not server:
                body.pop("server")
            async with sem, http.post(f"{url}/v1/memes", json=body) as r:
                data = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"engine answered {r.status}: {data}")
                return template, list(data["boxes"]), str(data["model_version"])

        return await asyncio.gather(*(one(i) for i in range(n)))


def round_seeds(run_seed: int, index: int, taste: Taste, round_no: int) -> tuple[int, int]:
    """The seed of a server's round's vote draws, and its first meme's seed: they differ per run
    seed, server and round, so each round's captions are fresh samples, except a `fresh=False`
    server's, which repeat its round 0's."""
    drawn = round_no if taste.fresh else 0
    return (
        run_seed * 1_000_003 + index * 101 + drawn,
        run_seed * 10**8 + drawn * 10**6 + index * 10**4,
    )


async def round_of(
    store: Store,
    url: str,
    index: int,
    taste: Taste,
    round_no: int,
    args: argparse.Namespace,
    counts: Counter[str] | None = None,
) -> dict[str, Any]:
    """One server's round: memes recorded in the store, each voted on by its members."""
    guild = guild_id(index)
    vote_seed, first_seed = round_seeds(args.seed, index, taste, round_no)
    rng = random.Random(vote_seed)
    made = await make_memes(url, guild, args.memes, first_seed, style=args.style)
    votes: list[int] = []
    for i, (template, boxes, version) in enumerate(made):
        message = 10**15 + index * 10**8 + round_no * 10**6 + i  # unique per server, round
        await store.record_generation(
            NewGeneration(
                channel_id=guild,
                user_id=member_id(guild, 0),
                template=template,
                boxes=boxes,
                guild_id=guild,
                options=MemeAsk(template=template, style=args.style).stored_options(),
                model_version=version,
                message_id=message,
            )
        )
        cast = draw_votes(boxes, taste, rng, noise=args.noise)
        voters = rng.sample(range(1, MEMBERS), len(cast))
        for member, v in zip(voters, cast, strict=True):
            await store.set_vote(message, member_id(guild, member), v)
        votes += cast
    captions = [boxes for _, boxes, _ in made]
    return {
        "upvote_share": upvote_share(votes),
        "liked_share": sum(taste.likes(b) for b in captions) / len(made),
        # written like people's? made-up words (seen < 3 times in training) and word-pair
        # variety, as bench/caption_stats.py measures them (people: oov ~1.7%, distinct2 ~0.69)
        "oov": oov_share(captions, counts) if counts else None,
        "distinct2": distinct2(captions),
        "votes": len(votes),
        "model_version": made[0][2],
        "examples": [" / ".join(b) for _, b, _ in made[:3]],
    }


async def retrain_taste(store: Store, queue: Any, settings: Settings, index: int) -> dict[str, Any]:
    """The server's /retrain: a queued taste run, then the worker's path runs it."""
    from retrain.taste_requests import request_taste_run

    guild = guild_id(index)
    t0 = time.monotonic()
    try:
        run = await request_taste_run(store, queue, guild, requested_by=str(member_id(guild, 1)))
    except MemebotError as e:  # too few votes: /retrain would say so and run nothing
        return {"status": "not run", "error": str(e), "seconds": round(time.monotonic() - t0, 2)}
    await asyncio.to_thread(queue.work_once)
    done = await store.run(run.id)
    assert done is not None
    return {
        "id": done.id,
        "status": done.status,
        "error": done.error,
        "gate": done.gate,
        "seconds": round(time.monotonic() - t0, 2),
    }


def training_word_counts(settings: Settings) -> Counter[str] | None:
    """Word counts of the training split (made-up words are the rare ones); None without the
    train extra."""
    try:
        from training.prepare import prepare
    except ImportError:
        return None
    prepared = prepare(settings.data_dir, cache_dir=settings.cache_dir)
    return word_counts(c.boxes for c in prepared.captions("train"))


def base_val_nats(env: dict[str, str], settings: Settings, model: Path) -> float:
    """The base model's val nats/char as the gate measures it (`memebot eval`)."""
    from retrain.subprocesses import Subprocess
    from retrain.worker import score

    return score(
        Subprocess(env=env), model, settings.data_dir, split="val", limit=settings.gate_val_limit
    )


async def run_bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from retrain.promotion import point_active
    from retrain.queue import RunQueue
    from retrain.worker import execute_run

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    models = tmp / "models"
    source = Settings.from_env().model_dir
    point_active(models, source)
    # Where things are, nothing else: every other setting is the shipped default.
    env = os.environ | {
        "MEMEBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'memebot.db'}",
        "MEMEBOT_QUEUE_URL": f"sqlite:///{tmp / 'queue.db'}",
        "MEMEBOT_MODELS_DIR": str(models),
        "MEMEBOT_MODEL": str(source),
        "MEMEBOT_ENGINE_URLS": url,
        "MEMEBOT_DOWNLOAD_IMAGES": "0",
    }
    settings = Settings.from_env(env)
    await upgrade(settings.database_url)
    val_before = None if args.no_eval else base_val_nats(env, settings, models / "active")
    counts = training_word_counts(settings)
    engine = start_engine_process(models / "active", env=env, port=port, timeout=180)
    store = Store.from_url(settings.database_url)
    queue = RunQueue(settings.queue_url, execute=lambda run_id: execute_run(run_id, settings))
    rounds: dict[str, list[dict[str, Any]]] = {t.name: [] for t in TASTES}
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in TASTES if t.retrains}
    t0 = time.monotonic()
    try:
        for k in range(args.rounds + 1):
            if k:
                for i, taste in enumerate(TASTES):
                    if taste.retrains:
                        run = await retrain_taste(store, queue, settings, i)
                        print(f"round {k}: {taste.name} taste run {run['status']}", file=sys.stderr)
                        runs[taste.name].append(run)
            for i, taste in enumerate(TASTES):
                rounds[taste.name].append(await round_of(store, url, i, taste, k, args, counts))
            shares = {n: f"{r[-1]['upvote_share']:.3f}" for n, r in rounds.items()}
            print(f"round {k}: upvote shares {shares}", file=sys.stderr)
        seconds = time.monotonic() - t0
    finally:
        queue.close()
        await store.close()
        stop_engine_process(engine.proc)
    val_after = None if args.no_eval else base_val_nats(env, settings, models / "active")
    return summarise(rounds, runs, seconds) | {
        "base_val_nats_before": val_before,
        "base_val_nats_after": val_after,
        "memes_per_server_round": args.memes,
        "noise": args.noise,
        "style": args.style,
    }


def summarise(
    rounds: dict[str, list[dict[str, Any]]], runs: dict[str, list[dict[str, Any]]], seconds: float
) -> dict[str, Any]:
    control = [t.name for t in TASTES if not t.retrains]  # "control", "control-fresh"
    shares = {n: [r["upvote_share"] for r in rs] for n, rs in rounds.items()}
    retrain_seconds = [r["seconds"] for rs in runs.values() for r in rs if r["status"] != "not run"]

    def ratio(s: list[float | None]) -> float | None:
        return s[-1] / s[0] if s and s[0] and s[-1] is not None else None

    return {
        "upvote_share_by_round": {n: s for n, s in shares.items() if n not in control},
        "control_share_by_round": shares["control"],
        "control_fresh_share_by_round": shares["control-fresh"],
        "share_ratio": {n: ratio(s) for n, s in shares.items()},
        "liked_share_by_round": {n: [r["liked_share"] for r in rs] for n, rs in rounds.items()},
        "oov_by_round": {n: [r["oov"] for r in rs] for n, rs in rounds.items()},
        "distinct2_by_round": {n: [r["distinct2"] for r in rs] for n, rs in rounds.items()},
        "taste_retrain_seconds": retrain_seconds,
        "taste_retrain_seconds_max": max(retrain_seconds, default=None),
        "runs": {
            n: [{k: r.get(k) for k in ("status", "error", "seconds")} for r in rs]
            for n, rs in runs.items()
        },
        "gates": {n: [r.get("gate") for r in rs] for n, rs in runs.items()},
        "examples_by_round": {n: [r["examples"] for r in rs] for n, rs in rounds.items()},
        "seconds": round(seconds, 1),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = iter(["tab:green", "tab:orange", "tab:purple", "tab:red"])
    top = 0.0
    for name, shares in result["upvote_share_by_round"].items():
        c = next(colors)
        rounds = list(range(len(shares)))
        ax.plot(rounds, shares, "o-", color=c, label=name)
        ax.axhline(2 * shares[0], ls=":", color=c, lw=0.8)
        top = max(top, *shares, 2 * shares[0])
    control = result["control_share_by_round"]
    rounds = list(range(len(control)))
    ax.plot(rounds, control, "s--", color="tab:gray", label="control (never retrains)")
    ax.axhspan(control[0] * 0.85, control[0] * 1.15, color="tab:gray", alpha=0.15)
    fresh = result.get("control_fresh_share_by_round")
    if fresh:
        ax.plot(rounds, fresh, "x:", color="tab:gray", label="control, fresh samples")
    ax.set_xlabel("round (0 = before any retrain)")
    ax.set_ylabel("upvote share")
    ax.set_xticks(rounds)
    ax.set_ylim(0, max(top, *control, *(fresh or [])) * 1.1)
    ax.set_title(
        f"style {result['style']}; dotted: target 2 x round 0; band: control +-15%",
        fontsize="small",
    )
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def sample_likes(n: int, style: Style) -> dict[str, float]:
    """Share of `n` captions of the shipped model (default style, no taste) each taste likes."""
    settings = Settings.from_env()
    engine = start_engine_process(settings.model_dir, env={"MEMEBOT_DOWNLOAD_IMAGES": "0"})
    try:
        made = await make_memes(engine.url, guild_id(0), n, 0, server=False, style=style)
    finally:
        stop_engine_process(engine.proc)
    return {t.name: sum(t.likes(b) for _, b, _ in made) / n for t in TASTES}


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--smoke", action="store_true", help="1 round of 40 memes, no plot")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--memes", type=int, default=200, help="memes per server per round")
    p.add_argument("--noise", type=float, default=0.1, help="chance a vote is flipped")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--style", choices=STYLES, default=DEFAULT_STYLE, help="the /meme style (the bot's default)"
    )
    p.add_argument("--no-eval", action="store_true", help="skip the base model's val nats")
    p.add_argument("--sample", type=int, default=0, help="only: share each taste likes")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of the shares")
    p.add_argument("--tmp", type=Path, default=None, help="scratch directory parent")
    args = p.parse_args()
    if args.sample:
        print(json.dumps(asyncio.run(sample_likes(args.sample, args.style))))
        return 0
    if args.smoke:
        args.rounds, args.memes = 1, 40
    with tempfile.TemporaryDirectory(prefix="memebot-communities-", dir=args.tmp) as tmp:
        result = asyncio.run(run_bench(args, Path(tmp)))
    if args.plot:
        plot(result, args.plot)
    if args.json:
        print(json.dumps(result))
    else:
        for name, shares in [
            *result["upvote_share_by_round"].items(),
            ("control", result["control_share_by_round"]),
            ("control-fresh", result["control_fresh_share_by_round"]),
        ]:
            print(f"{name:12s} " + "  ".join(f"{s:.3f}" for s in shares))
        print(f"taste retrain seconds: {result['taste_retrain_seconds']}")
        print(
            f"base val nats/char: {result['base_val_nats_before']} -> "
            f"{result['base_val_nats_after']}; {result['seconds']} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
