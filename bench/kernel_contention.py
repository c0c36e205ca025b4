"""The compiled kernel on a busy machine: 64 captions decoded in one batch (the shipped model,
the bot's default style), with OpenMP's threads waiting at the step's barriers by spinning
(`OMP_WAIT_POLICY=active`, libgomp's own default) or by sleeping (`passive`, what the engine
sets unless the environment says otherwise), on an idle machine and beside one busy process
(a bot, a retrain or another replica on the same 2 cores). One thread (`MEMEBOT_DECODE_THREADS=1`)
is the reference. Each configuration runs in its own process (libgomp reads the policy once),
interleaved, `--rounds` batches each; the figure is the median seconds per batch.

    python bench/kernel_contention.py [--json] [--repeats 3] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGS = {  # name -> environment
    "spin (libgomp default)": {"OMP_WAIT_POLICY": "active"},
    "passive (engine default)": {"OMP_WAIT_POLICY": "passive"},
    "1 thread": {"MEMEBOT_DECODE_THREADS": "1"},
}

# One process's measurement: the median of `rounds` batches of 64 captions, after one warm-up.
CHILD = """
import os, statistics, sys, time
from pathlib import Path
from engine.decoding.batch import run_jobs
from engine.decoding.jobs import CaptionRequest, make_job
from engine.decoding.loader import load_model
from engine.decoding.pickers import Decoding
model = load_model(Path(sys.argv[1]), decoder="kernel",
                   threads=int(os.environ.get("MEMEBOT_DECODE_THREADS", "0")))
def batch(off):
    jobs = [make_job(model, CaptionRequest("success-kid", 2, decoding=Decoding("natural"),
                                           seed=off + i)) for i in range(64)]
    t = time.perf_counter()
    run_jobs(model, jobs)
    return time.perf_counter() - t
batch(0)
print(statistics.median(batch(1000 * (r + 1)) for r in range(int(sys.argv[2]))))
"""


def measure(model: Path, env: dict[str, str], rounds: int) -> float:
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    if "OMP_WAIT_POLICY" not in env:
        full.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), str(rounds)],
        env=full,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    from engine.decoding import gru_kernel

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per configuration")
    p.add_argument("--rounds", type=int, default=4, help="64-caption batches per run")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    if not gru_kernel.available():
        print("error: the compiled kernel was not built", file=sys.stderr)
        return 2
    results: dict[str, dict[str, list[float]]] = {"idle": {}, "busy": {}}
    for load in ("idle", "busy"):
        burner = None
        if load == "busy":  # one process that never sleeps
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for _ in range(args.repeats):
                for name, env in CONFIGS.items():
                    t = measure(args.model, env, args.rounds)
                    results[load].setdefault(name, []).append(t)
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
    table = {
        load: {name: statistics.median(ts) for name, ts in by.items()}
        for load, by in results.items()
    }
    if args.json:
        print(json.dumps({"seconds_per_64_captions": table, "runs": results}))
        return 0
    print("| waiting at barriers | idle machine (s / 64 captions) | beside one busy process |")
    print("|---|---:|---:|")
    for name in CONFIGS:
        print(f"| {name} | {table['idle'][name]:.3f} | {table['busy'][name]:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
