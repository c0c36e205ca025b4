"""One retraining run, start to finish, in a worker process (never in the bot or an engine).

    claim (queued -> running) -> curate -> train (a `memebot train` subprocess) -> evaluate
    (`memebot eval` subprocesses) -> gate -> promote (every engine reloads, then the store
    records the version as active and models/active points at it) -> finished

Training and evaluation run as CLI subprocesses: a crash, a kill or a full disk there is the
subprocess's non-zero exit, recorded as the run's error, and nothing has touched the active
model (the artifact is written whole or not at all, and promotion comes last).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.store import ModelVersion, RunInfo, Store
from memebot.errors import ArtifactError, MemebotError
from memebot.settings import Settings
from retrain.curation import Curated, CurationRules, curate, write_jsonl
from retrain.engines import point_active, reload_all
from retrain.gate import GateResult, Scores, judge

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often the training's history.json is read for progress
FINETUNE_BATCH = 256  # rows per fine-tune batch (passed to `memebot train --batch-size`)
# Downvoted training rows get this many copies in all per copy of an upvoted row: the
# unlikelihood term is a light counterweight, not half of the fine-tune (docs/RETRAIN.md).
NEGATIVE_RATIO = 0.5


def engine_token(settings: Settings) -> str | None:
    return settings.engine_token.get_secret_value() if settings.engine_token else None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RunFailed(MemebotError):
    """A step of the run failed; the message is what the run's record shows."""


class CandidateUnusable(RunFailed):
    """The candidate artifact cannot be loaded or scored (corrupt, truncated): rejected."""


def memebot_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "memebot.cli", *args]


def read_meta(artifact: Path) -> dict[str, Any]:
    try:
        meta = json.loads((artifact / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{artifact}: no readable meta.json ({e})") from e
    if not isinstance(meta, dict) or "version" not in meta:
        raise ArtifactError(f"{artifact / 'meta.json'}: no model version in it")
    return meta


async def ensure_active(store: Store, settings: Settings) -> ModelVersion:
    """The active model; on a fresh store, the one the engines start with (MEMEBOT_MODEL) is
    recorded as the first version."""
    active = await store.active_model_version()
    if active is not None:
        return active
    meta = read_meta(settings.model_dir)
    version = str(meta["version"])
    known = {v.version: v for v in await store.model_versions()}
    if version in known:
        return await store.activate_model_version(version)
    return await store.record_model_version(
        version,
        path=str(settings.model_dir.resolve()),
        metrics=dict(meta.get("metrics") or {}),
        created_by="initial (MEMEBOT_MODEL)",
        activate=True,
    )


@dataclass
class Subprocess:
    """Runs `memebot` subcommands; `on_start` sees each process (tests kill it)."""

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    on_start: Any = None

    def run(self, args: list[str], *, poll: Any = None) -> str:
        """stdout of `memebot ARGS`; RunFailed with the last stderr line on a non-zero exit."""
        proc = subprocess.Popen(
            memebot_command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        if self.on_start is not None:
            self.on_start(proc)
        if poll is None:
            out, err = proc.communicate()
        else:
            while proc.poll() is None:
                poll()
                time.sleep(POLL_S)
            out, err = proc.communicate()
        if proc.returncode != 0:
            lines = [ln for ln in (err or "").strip().splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit status {proc.returncode}"
            how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else "failed"
            raise RunFailed(f"memebot {args[0]} {how}: {last}")
        return out


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
        curate_for_training, await store.rated_generations(), settings
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


def curate_for_training(generations: list[Any], settings: Settings) -> Curated:
    from retrain.corpus import base_pairs, content_filter, training_cleaner

    return curate(
        generations,
        rules=CurationRules(),
        blocked=content_filter("standard"),
        clean=training_cleaner(),
        base=base_pairs(settings.data_dir, settings.cache_dir),
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


async def promote(
    store: Store,
    settings: Settings,
    artifact: Path,
    version: str,
    active: ModelVersion,
    run: RunInfo,
    gate: dict[str, Any],
) -> str | None:
    """Every engine loads the candidate, then the store records it as active and
    models/active points at it. None on success, else why it was not promoted (engines that
    had already switched go back to the active model)."""
    results = await reload_all(settings.engine_replicas, artifact, token=engine_token(settings))
    gate["engines"] = [r.__dict__ for r in results]
    refused = [r for r in results if r.status in ("refused", "error")]
    switched = tuple(r.url for r in results if r.status == "ok")
    if refused:
        if switched:
            await reload_all(switched, Path(active.path), token=engine_token(settings))
        return "engines refused the candidate: " + "; ".join(
            f"{r.url}: {r.detail}" for r in refused
        )
    # An unreachable replica (down or restarting) starts from models/active, updated below.
    try:
        await store.record_model_version(
            version,
            path=str(artifact.resolve()),
            parent=active.version,
            metrics={"gate": gate, "run_id": run.id, "mode": run.mode},
            created_by=run.requested_by,
            activate=True,
        )
    except Exception:
        # Engines and store must agree: the replicas go back to the recorded active model.
        await reload_all(switched, Path(active.path), token=engine_token(settings))
        raise
    point_active(settings.models_dir, artifact)
    return None


async def rollback(store: Store, settings: Settings) -> tuple[ModelVersion, list[Any]]:
    """Back to the active model's parent (gate-free): engines reload it, the store and
    models/active follow. MemebotError if there is no previous version."""
    active = await store.active_model_version()
    if active is None or active.parent is None:
        raise RunFailed("no previous model version to roll back to")
    versions = {v.version: v for v in await store.model_versions()}
    target = versions.get(active.parent)
    if target is None:
        raise RunFailed(f"the previous version {active.parent} is not recorded")
    results = await reload_all(
        settings.engine_replicas, Path(target.path), token=engine_token(settings)
    )
    bad = [r for r in results if r.status in ("refused", "error")]
    if bad:
        raise RunFailed(
            f"engines refused {target.version}: " + "; ".join(f"{r.url}: {r.detail}" for r in bad)
        )
    now_active = await store.activate_model_version(target.version)
    point_active(settings.models_dir, Path(target.path))
    return now_active, results


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
