"""The compiled kernel on a busy machine. Per configuration: a lone row's step (latency: one
caption at a time) and 64 captions decoded in one batch (throughput; the shipped model, the
bot's default style), with OpenMP's threads waiting at the step's barriers by spinning
(`OMP_WAIT_POLICY=active`, libgomp's own default) or by sleeping at once (`passive`, what the
engine sets unless the environment says otherwise; below 16 rows a step then runs on one
thread, _gru_step.c PARALLEL_ROWS), on an idle machine and beside one busy process (a bot, a
retrain or another replica on the same 2 cores). One thread (`MEMEBOT_DECODE_THREADS=1`) is the
reference. Each configuration runs in its own process (libgomp reads the policy once),
interleaved; figures are medians over the repeats (each run: the fastest of 3 x 50 lone-row
steps, the median of `--rounds` batches).

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

CONFIGS: dict[str, dict[str, str | None]] = {  # name -> environment (None: unset)
    "spin (libgomp default)": {"OMP_WAIT_POLICY": "active", "GOMP_SPINCOUNT": None},
    "sleep at once (passive: engine default)": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None},
    "1 thread": {"MEMEBOT_DECODE_THREADS": "1"},
}

# One process's measurement: a lone row's step (ms, fastest of 3 x 50 after a warm-up) and
# the median of `rounds` batches of 64 captions (s), after one warm-up batch.
CHILD = """
import os, statistics, sys, time
from pathlib import Path
import numpy as np
from engine.decoding.batch import run_jobs
from engine.decoding.jobs import CaptionRequest, make_job
from engine.decoding.loader import load_model
from engine.decoding.pickers import Decoding
model = load_model(Path(sys.argv[1]), decoder="kernel",
                   threads=int(os.environ.get("MEMEBOT_DECODE_THREADS", "0")))
chars, zeros = np.full(1, model.vocab.space_id), np.zeros(1, dtype=np.int64)
state = model.initial_state(1)
def lone():
    global state
    t = time.perf_counter()
    for _ in range(50):
        _, state = model.step(state, chars, zeros, zeros)
    return (time.perf_counter() - t) * 1000 / 50
lone()
step = min(lone() for _ in range(3))
def batch(off):
    jobs = [make_job(model, CaptionRequest("success-kid", 2, decoding=Decoding("natural"),
                                           seed=off + i)) for i in range(64)]
    t = time.perf_counter()
    run_jobs(model, jobs)
    return time.perf_counter() - t
batch(0)
print(step, statistics.median(batch(1000 * (r + 1)) for r in range(int(sys.argv[2]))))
"""


def measure(model: Path, env: dict[str, str | None], rounds: int) -> tuple[float, float]:
    full = {**os.environ, "PYTHONPATH": str(ROOT)}
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        full.pop(k, None)  # what the environment of this bench had must not leak in
    full.update({k: v for k, v in env.items() if v is not None})
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), str(rounds)],
        env=full,
        check=True,
        capture_output=True,
        text=True,
    )
    step, batch = out.stdout.strip().splitlines()[-1].split()
    return float(step), float(batch)


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
    results: dict[str, dict[str, list[tuple[float, float]]]] = {"idle": {}, "busy": {}}
    for load in ("idle", "busy"):
        burner = None
        if load == "busy":  # one process that never sleeps
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for _ in range(args.repeats):
                for name, env in CONFIGS.items():
                    results[load].setdefault(name, []).append(measure(args.model, env, args.rounds))
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
    table = {
        load: {
            name: {
                "lone_step_ms": statistics.median(r[0] for r in runs),
                "batch64_s": statistics.median(r[1] for r in runs),
            }
            for name, runs in by.items()
        }
        for load, by in results.items()
    }
    if args.json:
        print(json.dumps({"medians": table, "runs": results}))
        return 0
    print(
        "| waiting at barriers | lone-row step, idle | beside a busy process "
        "| 64 captions, idle | beside a busy process |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in CONFIGS:
        i, b = table["idle"][name], table["busy"][name]
        print(
            f"| {name} | {i['lone_step_ms']:.3f} ms | {b['lone_step_ms']:.3f} ms "
            f"| {i['batch64_s']:.3f} s | {b['batch64_s']:.3f} s |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
