"""Training benchmark: every registered architecture (training/models: seed-cnn, the article's
network, as the baseline; char-gru, lstm, and any other) at equal wall clock on this machine.

Each architecture trains in its own fresh process, for the same `--minutes` of wall clock
counted from the start of its run, on the same data, and is scored on the same first
`--val-captions` captions of the project's val split. Reports trained target characters per
second (time in training steps only; "steady" leaves out the first batch, which carries
graph tracing) and the val nats/char each reached.

Each run is one epoch that the budget ends (checked after every batch: training/callbacks.py
TimeBudget), so every architecture spends its minutes training rather than validating; then
come that epoch's validation (the checkpoint) and the final evaluation, which every run pays
alike after its budget (`wall_s` shows the whole run).

    python bench/train.py --minutes 10 [--json] [--archs char-gru,lstm] [--val-captions 400]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from memebot.artifact.configs import CONFIGS, DEFAULT_ARCH
from memebot.settings import Settings

BASELINE = "seed-cnn"
# Batches in the bench's one epoch: more than any budget reaches (char-gru trains ~3 batches
# a second here; seed-cnn's data alone is ~47,000 batches of 256 rows).
ONE_EPOCH = 10_000_000


def run_isolated(
    arch: str, args: argparse.Namespace, settings: Settings, tmp: Path, precision: str = "auto"
) -> dict[str, Any]:
    """`run_one` in a fresh process: TensorFlow state left by one run (thread pools, oneDNN
    caches, 3 GB of seed-cnn) slowed the next run in the same process by ~25% (measured:
    char-gru 28.2k chars/s after seed-cnn in one process, 36.2k in a fresh one)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(run_one, arch, args, settings, tmp, precision).result()


def run_one(
    arch: str, args: argparse.Namespace, settings: Settings, tmp: Path, precision: str = "auto"
) -> dict[str, Any]:
    from training.train import TrainOptions, train

    started = time.monotonic()
    out = tmp / f"{arch}-{precision}"
    opts = TrainOptions(
        data=args.data,
        out=out,
        arch=arch,
        epochs=1,
        steps_per_epoch=ONE_EPOCH,
        max_minutes=args.minutes,
        seed=args.seed,
        cache_dir=settings.cache_dir,
        val_limit=args.val_captions,
        verbose=0,
        precision=precision,
    )
    train(opts, echo=lambda s: print(f"[{arch}] {s}", file=sys.stderr))
    wall = time.monotonic() - started
    meta = json.loads((out / "meta.json").read_text())
    m = meta["metrics"]
    hist = json.loads((out / "history.json").read_text())
    batches = sum(hist.get("batches", []))
    per_batch = m["trained_chars"] / max(batches, 1)
    first = sum(hist.get("first_batch_seconds", []))
    steady_s = m["train_seconds"] - first
    return {
        "chars_per_s": m["chars_per_second"],
        "steady_chars_per_s": (batches - 1) * per_batch / steady_s if steady_s > 0 else None,
        "val_nats": m["val_nats_per_char"],
        "trained_chars": m["trained_chars"],
        "batches": batches,
        "train_seconds": m["train_seconds"],
        "wall_s": wall,
        "stopped_by_budget": m["stopped_by_budget"],
        "precision": m.get("precision", "float32"),
        "params": meta["extra"]["params"],
    }


def compare(results: dict[str, dict[str, Any]]) -> None:
    """Adds each run's speed and val nats relative to the baseline (seed-cnn), when it ran."""
    base = results.get(BASELINE)
    for r in results.values():
        if base is not None:
            r["speedup"] = r["chars_per_s"] / base["chars_per_s"]
            r["nats_below_baseline"] = base["val_nats"] - r["val_nats"]


def table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"| arch | precision | params | trained chars/s | steady chars/s | val nats/char "
        f"({args.val_captions} val captions) | vs {BASELINE} | whole run |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        steady = r["steady_chars_per_s"]
        vs = (
            f"{r['speedup']:,.0f}×, {r['nats_below_baseline']:+.2f} nats"
            if "speedup" in r and name != BASELINE
            else ""
        )
        lines.append(
            f"| {name.split('@')[0]} | {r['precision']} | {r['params']:,} "
            f"| {r['chars_per_s']:,.1f} | {'-' if steady is None else f'{steady:,.1f}'} "
            f"| {r['val_nats']:.3f} | {vs} | {r['wall_s'] / 60:.1f} min |"
        )
    best = min(results, key=lambda k: results[k]["val_nats"])
    lines.append(
        f"\nlowest val nats/char after {args.minutes:g} minutes each: {best.split('@')[0]} "
        f"({results[best]['val_nats']:.3f})"
    )
    return "\n".join(lines)


def main() -> int:
    settings = Settings.from_env()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per architecture")
    p.add_argument("--data", type=Path, default=settings.data_dir, help="ImgFlip575K directory")
    p.add_argument("--val-captions", type=int, default=400, help="val captions all are scored on")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument(
        "--archs",
        default=",".join(CONFIGS),
        help="comma-separated architectures to run (default: every registered one)",
    )
    p.add_argument(
        "--float32-too",
        action="store_true",
        help=f"also train the default architecture ({DEFAULT_ARCH}) in float32 when its "
        "default precision is mixed_bfloat16 on this CPU: one more run, same budget",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = [a for a in archs if a not in CONFIGS]
    if unknown or not archs:
        p.error(f"--archs {args.archs}: choose from {', '.join(CONFIGS)}")
    if not args.minutes > 0:
        p.error(f"--minutes {args.minutes}: must be > 0")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="memebot-bench-") as d:
        for arch in archs:
            results[arch] = run_isolated(arch, args, settings, Path(d))
        if (
            args.float32_too
            and DEFAULT_ARCH in results
            and results[DEFAULT_ARCH]["precision"] != "float32"
        ):
            results[f"{DEFAULT_ARCH}@float32"] = run_isolated(
                DEFAULT_ARCH, args, settings, Path(d), precision="float32"
            )
    compare(results)
    if args.json:
        print(
            json.dumps(
                {
                    "minutes": args.minutes,
                    "val_captions": args.val_captions,
                    "baseline": BASELINE,
                    "default_arch": DEFAULT_ARCH,
                    "cpu_count": os.cpu_count(),
                    "archs": results,
                }
            )
        )
    else:
        print(table(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
