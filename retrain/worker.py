"""One retraining run, start to finish, in a worker process (never in the bot or an engine).

    claim (queued -> running) -> curate (captions checked by `memebot data check-captions`)
    -> train (a `memebot train` subprocess) -> evaluate (`memebot eval` subprocesses) -> gate
    -> promote (retrain/promotion.py: every engine reloads, then the store records the version
    as active and models/active points at it) -> finished

A taste run (kind `taste`, one server's) takes retrain/taste_run.py's shorter way instead.

Training, evaluation and the caption checks run as CLI subprocesses (retrain/subprocesses.py;
the worker imports no training code): a crash, a kill or a full disk there is the
subprocess's non-zero exit, recorded as the run's error, and nothing has touched the active
model (the artifact is written whole or not at all, and promotion comes last).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memebot.errors import MemebotError
from memebot.logs import get_logger
from memebot.settings import Settings
from memebot.store import GenerationInfo, RunInfo, Store
from retrain.corpus import check_captions, content_filter
from retrain.curation import Curated, CurationRules, curate, write_jsonl
from retrain.gate import GateResult, Scores, judge
from retrain.promotion import ensure_active, promote, read_meta
from retrain.subprocesses import RunFailed, Subprocess
from retrain.taste_run import taste_steps

log = get_logger(__name__)

FINETUNE_BATCH = 256  # rows per fine-tune batch (passed to `memebot train --batch-size`)
# Downvoted training rows get this many copies in all per copy of an upvoted row: the
# unlikelihood term is a light counterweight, not half of the fine-tune (docs/RETRAIN.md).
NEGATIVE_RATIO = 0.5


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class CandidateUnusable(RunFailed):
    """The candidate artifact cannot be loaded or scored (corrupt, truncated): rejected."""


@dataclass
class RunContext:
    run: RunInfo
    settings: Settings
    store: Store
    loop: asyncio.AbstractEventLoop
    workdir: Path

    def update(self, **changes: Any) -> None:
        """From the training thread: store the run's stage/progress (fire and wait)."""
        asyncio.run_coroutine_threadsafe(
            self.store.update_run(self.run.id, **changes), self.loop
        ).result()


def execute_run(run_id: int, settings: Settings, *, proc: Subprocess | None = None) -> None:
    """The queue task: runs `run_id` to its recorded outcome. Never raises for a run's failure."""
    asyncio.run(_execute(run_id, settings, proc or Subprocess()))


async def _execute(run_id: int, settings: Settings, proc: Subprocess) -> None:
    store = Store.from_url(settings.database_url)
    try:
        run = await store.claim_run(run_id, worker_id())
        if run is None:
            log.info("run %s is not queued (taken or finished): skipped", run_id)
            return
        log.info("run %s (%s, by %s) started", run.id, run.mode, run.requested_by)
        workdir = settings.models_dir / "runs" / f"run-{run.id}"
        ctx = RunContext(run, settings, store, asyncio.get_running_loop(), workdir)
        try:
            if run.kind == "taste":
                status, error, gate, candidate = await taste_steps(store, settings, run)
            else:
                status, error, gate, candidate = await _steps(ctx, proc)
        except MemebotError as e:
            status, error, gate, candidate = "failed", str(e), None, None
        except Exception as e:  # the top-level handler: any failure is recorded, with context
            log.exception("run %s failed", run.id)
            status, error, gate, candidate = "failed", f"{type(e).__name__}: {e}", None, None
        await store.finish_run(run.id, status, error=error, gate=gate, candidate_version=candidate)
        log.info("run %s %s%s", run.id, status, f": {error}" if error else "")
    finally:
        await store.close()


async def _steps(
    ctx: RunContext, proc: Subprocess
) -> tuple[str, str | None, dict[str, Any] | None, str | None]:
    settings, store, run = ctx.settings, ctx.store, ctx.run
    active = await ensure_active(store, settings)
    await store.update_run(run.id, stage="curating", parent_version=active.version)
    curated = await asyncio.to_thread(
        curate_for_training, await store.rated_generations(), settings, proc, ctx.workdir
    )
    counts = curated.counts()
    await store.update_run(run.id, progress={"curation": counts})
    if not curated.train:
        return "failed", f"no rated caption passed curation:\n{curated.table()}", None, None
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    files = {
        "train": ctx.workdir / "train.jsonl",
        "train_down": ctx.workdir / "train-down.jsonl",
        "up": ctx.workdir / "heldout-up.jsonl",
        "down": ctx.workdir / "heldout-down.jsonl",
    }
    # Training reads only the train files; the gate scores only the held-out ones.
    write_jsonl(curated.train, files["train"])
    write_jsonl(curated.train_negatives, files["train_down"])
    write_jsonl(curated.heldout, files["up"])
    write_jsonl(curated.negatives, files["down"])

    out = settings.models_dir / f"run-{run.id}-{run.mode}"
    await asyncio.to_thread(train_candidate, ctx, proc, Path(active.path), files, out, curated)
    candidate = str(read_meta(out)["version"])
    await store.update_run(run.id, stage="evaluating", candidate_version=candidate)

    try:
        result = await asyncio.to_thread(
            gate_candidate, proc, settings, out, Path(active.path), files["up"], files["down"]
        )
    except CandidateUnusable as e:
        return "rejected", f"candidate {candidate} unusable: {e}", {"passed": False}, candidate
    gate = result.to_json() | {"counts": counts}
    if not result.passed:
        return "rejected", result.summary(), gate, candidate

    await store.update_run(run.id, stage="promoting")
    outcome = await promote(store, settings, out, candidate, active, run, gate)
    if outcome is not None:
        return "rejected", outcome, gate, candidate
    return "succeeded", None, gate, candidate


def curate_for_training(
    generations: list[GenerationInfo], settings: Settings, proc: Subprocess, workdir: Path
) -> Curated:
    checks = check_captions(generations, settings, proc, workdir)
    return curate(
        generations,
        rules=CurationRules(),
        blocked=content_filter("standard"),
        clean=checks.clean,
        base=checks.base,
    )


def extra_weight(
    weights: list[int], base_train: int, share: float, *, views: float = 0, samples: int = 0
) -> float:
    """X: each curated row of weight w is repeated round(w * X) times among `base_train` base
    rows. X makes curated rows about `share` of the rows; with `views`, it is also at most what
    keeps a row of the top weight seen about `views` times in `samples` rows drawn (a
    fine-tune: copies x samples / rows), since a few dozen captions seen hundreds of times are
    memorised rather than generalised from. Every row keeps at least one copy."""
    total = sum(weights)
    if total == 0:
        return 1.0
    x = share / (1 - share) * base_train / total
    top = max(weights)
    if views and samples and top * samples > views * total:
        # top * x * samples / (base_train + x * total) = views, solved for x
        x = min(x, views * base_train / (top * samples - views * total))
    return max(x, 1.0 / min(w for w in weights if w > 0))


def train_candidate(
    ctx: RunContext,
    proc: Subprocess,
    active: Path,
    files: dict[str, Path],
    out: Path,
    curated: Curated,
) -> None:
    """`memebot train` of the candidate: --extra-data the curated upvoted rows, and (with
    MEMEBOT_RETRAIN_UNLIKELIHOOD > 0) --negative-data the downvoted rows not held out."""
    settings, run = ctx.settings, ctx.run
    for stale in (out, out.with_name(out.name + ".partial")):  # a previous attempt's leftovers
        shutil.rmtree(stale, ignore_errors=True)
    meta = read_meta(active)
    metrics = meta.get("metrics") or {}
    # The parent's base rows: a fine-tuned parent counted its curated rows too.
    base_train = int(metrics.get("train_captions") or 10_000) - int(
        metrics.get("extra_captions") or 0
    )
    finetune = run.mode == "finetune"
    samples = settings.retrain_epochs * settings.retrain_steps * FINETUNE_BATCH if finetune else 0
    up = [r.weight for r in curated.train]
    x = extra_weight(
        up, base_train, settings.retrain_share, views=settings.retrain_views, samples=samples
    )
    args = [
        "train",
        "--arch",
        str(meta.get("arch", "char-gru")),
        "--data",
        str(settings.data_dir),
        "--out",
        str(out),
        "--extra-data",
        str(files["train"]),
        "--extra-weight",
        f"{x:.4f}",
        "--seed",
        str(run.id),
        "--val-limit",
        str(settings.gate_val_limit),
        "--quiet",
    ]
    down = [r.weight for r in curated.train_negatives]
    if settings.retrain_unlikelihood > 0 and sum(down) > 0:
        x_down = max(NEGATIVE_RATIO * x * sum(up) / sum(down), 1.0 / min(down))
        args += ["--negative-data", str(files["train_down"]), "--negative-weight", f"{x_down:.4f}"]
        args += ["--unlikelihood-weight", str(settings.retrain_unlikelihood)]
    if finetune:
        epochs = settings.retrain_epochs
        args += ["--init-from", str(active), "--epochs", str(epochs)]
        args += ["--steps-per-epoch", str(settings.retrain_steps), "--lr", str(settings.retrain_lr)]
        args += ["--batch-size", str(FINETUNE_BATCH)]
    else:
        epochs = 30
        args += ["--max-minutes", str(settings.retrain_full_minutes)]
    counts = {"curation": curated.counts()}  # kept beside the training figures
    ctx.update(stage="training", progress=counts | {"epoch": 0, "epochs": epochs})
    history = out.with_name(out.name + ".partial") / "history.json"
    started = time.monotonic()
    seen = [0]

    def poll() -> None:
        try:
            h = json.loads(history.read_text())
        except (OSError, ValueError):
            return
        done = len(h.get("val_loss", []))
        if done == seen[0]:
            return
        seen[0] = done
        elapsed = time.monotonic() - started
        ctx.update(
            progress=counts
            | {
                "epoch": done,
                "epochs": epochs,
                "val_loss": h["val_loss"][-1],
                "loss": (h.get("loss") or [None])[-1],
                "eta_s": round(elapsed / done * (epochs - done)),
            }
        )

    proc.run(args, poll=poll)
    if not (out / "meta.json").is_file():
        raise RunFailed(f"memebot train finished without writing {out}")


def score(proc: Subprocess, model: Path, data: Path, *, split: str, limit: int = 0) -> float:
    """Mean nats/char of `model` on `data` through `memebot eval --json`."""
    args = ["eval", str(model), "--data", str(data), "--split", split, "--json"]
    if limit:
        args += ["--limit", str(limit)]
    out = proc.run(args)
    try:
        return float(json.loads(out.strip().splitlines()[-1])["nats_per_char"])
    except (ValueError, KeyError, IndexError) as e:
        raise RunFailed(f"memebot eval {model}: unreadable output ({e})") from e


def scores_of(proc: Subprocess, settings: Settings, model: Path, up: Path, down: Path) -> Scores:
    val = score(proc, model, settings.data_dir, split="val", limit=settings.gate_val_limit)
    up_ll = -score(proc, model, up, split="all") if _has_rows(up) else None
    down_ll = -score(proc, model, down, split="all") if _has_rows(down) else None
    return Scores(val_nats=val, up_ll=up_ll, down_ll=down_ll)


def gate_candidate(
    proc: Subprocess, settings: Settings, candidate: Path, active: Path, up: Path, down: Path
) -> GateResult:
    try:
        cand = scores_of(proc, settings, candidate, up, down)
    except RunFailed as e:
        raise CandidateUnusable(str(e)) from e
    act = scores_of(proc, settings, active, up, down)  # a failure here fails the run
    return judge(cand, act)


def _has_rows(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


async def recover_abandoned(store: Store) -> list[int]:
    """Runs left `running` by a worker on this host that is gone (killed, crashed, machine
    rebooted): recorded as failed. Called when a worker starts."""
    host = socket.gethostname()
    failed = []
    for r in await store.runs(limit=50):
        if r.status != "running" or not r.worker or not r.worker.startswith(f"{host}:"):
            continue
        pid = int(r.worker.rsplit(":", 1)[1])
        if pid != os.getpid() and _alive(pid):
            continue
        if await store.finish_run(
            r.id, "failed", error=f"worker {r.worker} stopped during stage {r.stage}"
        ):
            failed.append(r.id)
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
