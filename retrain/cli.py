"""`memebot retrain`, `memebot worker`, `memebot model info|rollback`,
`memebot data export-ratings` and `memebot data forget-guild` (docs/RETRAIN.md)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from memebot.choices import DEFAULT_RUN_MODE, RUN_MODES
from memebot.errors import UsageError
from memebot.settings import Settings
from memebot.store import RunInfo, Store
from memebot.store.db import redacted
from retrain.queue import RunQueue

T = TypeVar("T")


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    r = sub.add_parser(
        "retrain",
        help="queue a retraining run on the community's ratings (one at a time)",
        description="Queues a run that `memebot worker` executes: curate the ratings, train a "
        "candidate, gate it against the active model, promote it to every engine. "
        "See docs/RETRAIN.md.",
    )
    r.add_argument(
        "--mode",
        choices=RUN_MODES,
        default=DEFAULT_RUN_MODE,
        help="finetune: continue from the active model (minutes); full: train from scratch",
    )
    r.add_argument("--wait", action="store_true", help="follow the run's progress until it ends")
    r.add_argument("--status", action="store_true", help="show the latest runs; queue nothing")
    r.set_defaults(func=cmd_retrain)

    w = sub.add_parser(
        "worker",
        help="run queued retraining runs (one worker, one run at a time)",
        description="Takes runs from the job queue "
        f"(MEMEBOT_QUEUE_URL, now {redacted(settings.queue_url)}).",
    )
    w.add_argument("--burst", action="store_true", help="run what is queued, then exit")
    w.set_defaults(func=cmd_worker)

    m = sub.add_parser("model", help="the served model's versions: info, or roll back")
    msub = m.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    msub.add_parser("info", help="the active version and its history").set_defaults(
        func=cmd_model_info
    )
    msub.add_parser(
        "rollback", help="return every engine to the previous version (no gate)"
    ).set_defaults(func=cmd_model_rollback)


def register_data(dsub: argparse._SubParsersAction, settings: Settings) -> None:
    """`memebot data export-ratings` (the `data` group is memebot.cli's)."""
    e = dsub.add_parser(
        "export-ratings",
        help="curate the rated captions into JSON lines and print what each rule dropped",
    )
    e.add_argument("--out", type=Path, required=True, help="JSON-lines file to write")
    e.add_argument(
        "--data",
        type=Path,
        default=settings.data_dir,
        help="base corpus, for dedupe (default: %(default)s)",
    )
    e.add_argument("--min-score", type=int, default=2, help="net score to keep (default 2)")
    e.add_argument(
        "--min-up-share", type=float, default=0.7, help="upvote share to keep (default 0.7)"
    )
    e.add_argument("--weight-cap", type=int, default=5, help="largest weight (default 5)")
    e.set_defaults(func=cmd_export_ratings)

    f = dsub.add_parser(
        "forget-guild",
        help="delete a server's tastes, memes, votes and settings now",
        description="Deletes everything the store keeps of one Discord server (its taste "
        "versions and their files under MEMEBOT_MODELS_DIR, its memes, every vote on them, "
        "its settings), whether or not the bot is still there. What the bot does by itself "
        "MEMEBOT_GUILD_RETENTION_DAYS after it is removed from a server.",
    )
    # A string, checked by the command: argparse's own error would be two lines.
    f.add_argument("guild_id", metavar="ID", help="the server's id (Discord shows it)")
    f.set_defaults(func=cmd_forget_guild)


def parse_guild_id(text: str) -> int:
    """A Discord server id (a snowflake: a positive 64-bit integer); UsageError otherwise."""
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if not 0 < value < 2**63:
        raise UsageError(f"server id {text!r}: expected the number Discord shows for it")
    return value


def cmd_forget_guild(args: argparse.Namespace, settings: Settings) -> int:
    from retrain.guilds import forget_guild

    guild_id = parse_guild_id(args.guild_id)
    gone = asyncio.run(_with_store(settings, lambda s: forget_guild(s, settings, guild_id)))
    if not gone.total:
        print(f"server {guild_id}: nothing stored; nothing deleted")
        return 0
    print(
        f"server {guild_id}: deleted {gone.tastes} taste version(s), {gone.generations}"
        f" meme(s), {gone.votes} vote(s){' and its settings' if gone.settings else ''}"
    )
    return 0


def cmd_export_ratings(args: argparse.Namespace, settings: Settings) -> int:
    import tempfile

    from retrain.corpus import check_captions, content_filter
    from retrain.curation import CurationRules, curate, write_jsonl
    from retrain.subprocesses import Subprocess

    if args.min_score < 1 or not 0 <= args.min_up_share <= 1 or args.weight_cap < 1:
        raise UsageError("--min-score and --weight-cap must be >= 1, --min-up-share in [0, 1]")
    if args.out.parent and not args.out.parent.is_dir():
        raise UsageError(f"--out {args.out}: no directory {args.out.parent}")
    generations = asyncio.run(_with_store(settings, lambda s: s.rated_generations()))
    rules = CurationRules(
        min_score=args.min_score, min_up_share=args.min_up_share, weight_cap=args.weight_cap
    )
    with tempfile.TemporaryDirectory(prefix="memebot-export-") as tmp:
        data = settings.model_copy(update={"data_dir": args.data})
        checks = check_captions(generations, data, Subprocess(), Path(tmp))
    curated = curate(
        generations,
        rules=rules,
        blocked=content_filter("standard"),
        clean=checks.clean,
        base=checks.base,
    )
    n = write_jsonl(curated.rows, args.out)
    print(curated.table())
    print(f"wrote {n} rows to {args.out}")
    return 0


async def _with_store(settings: Settings, body: Callable[[Store], Awaitable[T]]) -> T:
    from memebot.store.migrate import require_head

    await require_head(settings.database_url)
    store = Store.from_url(settings.database_url)
    try:
        return await body(store)
    finally:
        await store.close()


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from retrain.requests import describe, request_run, watch_run

    if args.status:
        runs = asyncio.run(_with_store(settings, lambda s: s.runs(limit=10)))
        print("\n".join(describe(r) for r in runs) or "no runs yet")
        return 0
    queue = RunQueue(settings.queue_url)
    try:
        run = asyncio.run(
            _with_store(
                settings,
                lambda s: request_run(s, queue, mode=args.mode, requested_by="shell"),
            )
        )
    finally:
        queue.close()
    print(f"run #{run.id} ({run.mode}) queued; `memebot worker` runs it")
    if not args.wait:
        return 0

    async def follow(store: Store) -> RunInfo:
        async def show(text: str) -> None:
            print(text, flush=True)

        return await watch_run(store, run.id, show)

    final = asyncio.run(_with_store(settings, follow))
    return 0 if final.status == "succeeded" else 1


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from retrain.worker import execute_run, recover_abandoned

    failed = asyncio.run(_with_store(settings, recover_abandoned))
    if failed:
        print(f"marked abandoned runs failed: {', '.join(f'#{i}' for i in failed)}")
    queue = RunQueue(settings.queue_url, execute=lambda run_id: execute_run(run_id, settings))
    try:
        if args.burst:
            print(f"ran {queue.work_until_empty()} queued runs")
        else:
            print(f"worker waiting for runs on {redacted(settings.queue_url)}", flush=True)
            queue.serve()
    finally:
        queue.close()
    return 0


def cmd_model_info(args: argparse.Namespace, settings: Settings) -> int:
    versions = asyncio.run(_with_store(settings, lambda s: s.model_versions()))
    if not versions:
        print(f"no versions recorded yet; engines serve {settings.model_dir}")
        return 0
    for v in versions:
        mark = "*" if v.active else " "
        gate = v.metrics.get("gate", {}).get("candidate") or {}
        val = f"  val {gate['val_nats']:.4f}" if "val_nats" in gate else ""
        print(
            f"{mark} {v.version}  {v.created_at:%Y-%m-%d %H:%M}  by {v.created_by or '?'}"
            f"  parent {v.parent or '-'}{val}"
        )
    return 0


def cmd_model_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from retrain.promotion import rollback

    active, results = asyncio.run(_with_store(settings, lambda s: rollback(s, settings)))
    print(f"rolled back to {active.version}")
    for r in results:
        print(f"  {r.url}: {r.status} {r.detail}")
    return 0
