"""Asking for a run: what /retrain and `memebot retrain` call. Imports only the store and the
queue (never training/ or TensorFlow), so the bot can use it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from memebot.errors import UsageError
from memebot.store import RunInfo, Store
from memebot.store.db import redacted
from retrain.queue import RunQueue


class NothingToTrain(UsageError):
    """No vote was cast or changed since the last run looked at the ratings."""


async def request_run(
    store: Store,
    queue: RunQueue,
    *,
    mode: str = "finetune",
    requested_by: str | None = None,
    guild_id: int | None = None,
    channel_id: int | None = None,
    message_id: int | None = None,
) -> RunInfo:
    """Records a queued run and enqueues it. RunInProgress if one is queued or running;
    NothingToTrain if there is no new rating since the last run that curated them."""
    current = await store.current_run()
    if current is None:
        last = next(
            (r for r in await store.runs(limit=50) if r.status in ("succeeded", "rejected")), None
        )
        since = last.started_at if last is not None else None
        if await store.votes_since(since) == 0:
            when = f" since run #{last.id} ({since:%Y-%m-%d %H:%M} UTC)" if last and since else ""
            raise NothingToTrain(f"no new ratings{when}: nothing to retrain on")
    run = await store.create_run(
        mode,
        requested_by=requested_by,
        guild_id=guild_id,
        channel_id=channel_id,
        message_id=message_id,
    )
    return await enqueue(store, queue, run)


async def enqueue(store: Store, queue: RunQueue, run: RunInfo) -> RunInfo:
    """Hands a recorded run to the queue; if the queue refuses it, the run is recorded failed
    (never left "queued" forever) and the refusal raised as a UsageError."""
    try:
        await asyncio.to_thread(queue.enqueue, run.id)  # a blocking database write
    except Exception as e:  # the queue is down
        await store.finish_run(run.id, "failed", error=f"could not enqueue: {e}")
        raise UsageError(f"the job queue {redacted(queue.url)} refused the run: {e}") from e
    return run


def describe(run: RunInfo) -> str:
    """One or two lines for a shell or a Discord message: stage, epoch, val loss, ETA, outcome."""
    if run.kind == "taste":
        return _describe_taste(run)
    head = f"run #{run.id} ({run.mode}) {run.status}"
    p = run.progress
    if run.status == "running":
        parts = [f"stage {run.stage}"]
        if run.stage == "training" and "epochs" in p:
            parts.append(f"epoch {p.get('epoch', 0)}/{p['epochs']}")
            if "val_loss" in p:
                parts.append(f"val loss {p['val_loss']:.4f}")
            if "eta_s" in p:
                parts.append(f"ETA {int(p['eta_s']) // 60}m{int(p['eta_s']) % 60:02d}s")
        return f"{head}: " + ", ".join(parts)
    if run.status == "queued":
        return f"{head}: waiting for a worker (`memebot worker`)"
    detail = run.error or ""
    if run.status == "succeeded":
        detail = f"{run.candidate_version} is live (parent {run.parent_version})"
    gate = run.gate
    if run.status == "succeeded" and gate.get("candidate") and gate.get("active"):
        c, a = gate["candidate"], gate["active"]
        detail += (
            f"\n  val nats/char {a['val_nats']:.4f} -> {c['val_nats']:.4f}; "
            f"upvoted ll/char {_f(a['up_ll'])} -> {_f(c['up_ll'])}; "
            f"downvoted ll/char {_f(a['down_ll'])} -> {_f(c['down_ll'])}"
        )
    return f"{head}: {detail}".rstrip(": ")


def _describe_taste(run: RunInfo) -> str:
    head = f"taste run #{run.id} {run.status}"
    if run.status == "running":
        return f"{head}: stage {run.stage}"
    if run.status == "queued":
        return f"{head}: waiting for a worker (`memebot worker`)"
    g = run.gate
    if run.status == "succeeded":
        numbers = ""
        if "candidate_auc" in g:
            numbers = (
                f"; held-out AUC {g['candidate_auc']:.3f} vs {g['baseline_auc']:.3f}"
                f" ({g['baseline']}) on {g['heldout_rows']} held-out memes"
            )
        return f"{head}: {run.candidate_version} now serves this server{numbers}"
    return f"{head}: {run.error or ''}".rstrip(": ")


async def watch_run(
    store: Store,
    run_id: int,
    on_change: Callable[[str], Awaitable[None]],
    *,
    interval: float = 2.0,
) -> RunInfo:
    """Calls `on_change(describe(run))` each time the run's description changes (the bot
    edits its /retrain message with it) until the run finishes; returns the finished run.
    Polls the store: the worker may be another process or machine."""
    last = None
    while True:
        run = await store.run(run_id)
        if run is None:
            raise UsageError(f"no retrain run #{run_id}")
        text = describe(run)
        if text != last:
            await on_change(text)
            last = text
        if not run.in_progress:
            return run
        await asyncio.sleep(interval)


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"
