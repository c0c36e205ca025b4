"""Training benchmark: `seed-cnn` (the article's network) vs the default architecture.

One run, same data, same wall-clock budget each, on this machine. Reports trained target
characters per second (time in training steps only) and the val nats/char each reached,
both evaluated on the same fixed slice of the project's val split.

    python bench/train.py --minutes 10 [--json] [--data DIR] [--val-captions 400]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from memebot.settings import Settings
from training.models import DEFAULT_ARCH
from training.train import TrainOptions, train


def run_isolated(
    arch: str, args: argparse.Namespace, settings: Settings, tmp: Path, precision: str = "auto"
) -> dict[str, float]:
    """`run_one` in a fresh process: TensorFlow state left by one run (thread pools, oneDNN
    caches, 3 GB of seed-cnn) slowed the next run in the same process by ~25% (measured:
    char-gru 28.2k chars/s after seed-cnn in one process, 36.2k in a fresh one)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(run_one, arch, args, settings, tmp, precision).result()


def run_one(
    arch: str, args: argparse.Namespace, settings: Settings, tmp: Path, precision: str = "auto"
) -> dict[str, float]:
    out = tmp / f"{arch}-{precision}"
    opts = TrainOptions(
        data=args.data,
        out=out,
        arch=arch,
        epochs=10_000,
        # Frequent epochs so the budget ends near a checkpoint; seed-cnn steps are ~20 s each.
        steps_per_epoch=20 if arch == "seed-cnn" else 300,
        patience=10_000,
        max_minutes=args.minutes,
        seed=args.seed,
        cache_dir=settings.cache_dir,
        val_limit=args.val_captions,
        verbose=0,
        precision=precision,
    )
    train(opts, echo=lambda s: print(f"[{arch}] {s}", file=sys.stderr))
    meta = json.loads((out / "meta.json").read_text())
    m = meta["metrics"]
    # Steady state: epochs after the first (graph tracing and pipeline warm-up excluded).
    hist = json.loads((out / "history.json").read_text())
    later = list(zip(hist.get("batches", [])[1:], hist.get("train_seconds", [])[1:], strict=True))
    per_batch = m["trained_chars"] / max(sum(hist.get("batches", [])), 1)
    steady = (
        sum(b for b, _ in later) * per_batch / max(sum(t for _, t in later), 1e-9)
        if later
        else float("nan")
    )
    return {
        "chars_per_s": m["chars_per_second"],
        "steady_chars_per_s": steady,
        "val_nats": m["val_nats_per_char"],
        "trained_chars": m["trained_chars"],
        "train_seconds": m["train_seconds"],
        "precision": m.get("precision", "float32"),
    }


def main() -> int:
    settings = Settings.from_env()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per architecture")
    p.add_argument("--data", type=Path, default=settings.data_dir, help="ImgFlip575K directory")
    p.add_argument("--val-captions", type=int, default=400, help="val captions both are scored on")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument(
        "--float32-too",
        action="store_true",
        help="also train the default architecture in float32 (when its default precision is "
        "mixed_bfloat16 on this CPU): a third run, same budget, to compare speed and val loss",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    f32: dict[str, float] | None = None
    with tempfile.TemporaryDirectory(prefix="memebot-bench-") as d:
        seed = run_isolated("seed-cnn", args, settings, Path(d))
        default = run_isolated(DEFAULT_ARCH, args, settings, Path(d))
        if args.float32_too and default["precision"] != "float32":
            f32 = run_isolated(DEFAULT_ARCH, args, settings, Path(d), precision="float32")
    result = {
        "minutes": args.minutes,
        "val_captions": args.val_captions,
        "seed_chars_per_s": seed["chars_per_s"],
        "default_chars_per_s": default["chars_per_s"],
        "speedup": default["chars_per_s"] / seed["chars_per_s"],
        "seed_steady_chars_per_s": seed["steady_chars_per_s"],
        "default_steady_chars_per_s": default["steady_chars_per_s"],
        "steady_speedup": default["steady_chars_per_s"] / seed["steady_chars_per_s"],
        "seed_val_nats": seed["val_nats"],
        "default_val_nats": default["val_nats"],
        "nats_gap": seed["val_nats"] - default["val_nats"],
        "default_arch": DEFAULT_ARCH,
        "default_precision": default["precision"],
        "cpu_count": os.cpu_count(),
    }
    if f32 is not None:
        result |= {
            "default_float32_chars_per_s": f32["chars_per_s"],
            "default_float32_val_nats": f32["val_nats"],
            "float32_speedup": f32["chars_per_s"] / seed["chars_per_s"],
        }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"| arch | trained chars/s | val nats/char ({args.val_captions} val captions) |")
        print("|---|---:|---:|")
        print(f"| seed-cnn | {seed['chars_per_s']:,.1f} | {seed['val_nats']:.3f} |")
        print(
            f"| {DEFAULT_ARCH} ({default['precision']}) | {default['chars_per_s']:,.0f} "
            f"| {default['val_nats']:.3f} |"
        )
        if f32 is not None:
            f32_row = f"{f32['chars_per_s']:,.0f} | {f32['val_nats']:.3f}"
            print(f"| {DEFAULT_ARCH} (float32) | {f32_row} |")
        print(
            f"\nspeedup {result['speedup']:,.0f}x, {result['nats_gap']:.2f} nats/char lower "
            f"after {args.minutes:g} minutes each"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
