"""Engine benchmark: decoding, batching over HTTP, rendering, memory, caption lengths.

Everything is measured in one run on this machine, beside the reference path: the imgflip
article's own loop (seed-cnn, one unbatched `model.predict` per character; untrained weights
are fine for timing).

    python bench/engine.py [--json] [--model DIR] [--seconds 8] [--plot docs/engine_latency.png]
    python bench/engine.py --startup-only   # start-up time and memory of `memebot engine` only
    python bench/engine.py --decoder tf     # the TensorFlow step (on the GPU if TF sees one)
    python bench/engine.py --tastes-only    # captions/s at 64 clients, with and without tastes

`--decoder` (default: MEMEBOT_DECODER, else auto) picks the step of the in-process figures and
of the `memebot engine` it load-tests; `step_ms` times one batched model call at 1 to 256 rows
beside the NumPy step (`step_ms_numpy_step`): where the two cross is where a GPU pays off.

The in-process `threshold_*`, `calibrated_*` and `beam5_*` figures write one candidate per
caption (N = 1: the decoding, then the scored pick every reply carries); `default_*` is the
default style as the API writes it, the best of `default_n_candidates` (targets: threshold
p50 <= 10 ms at N = 1, default p50 <= 25 ms at its N). The HTTP load and the calibrated
length ratios use the API's defaults too. `styles` and `default_style_*` are the bot's styles
against real captions (bench/caption_stats.py: distinct2_ratio, oov_ratio, length_ratio_worst).

`crowd_auc_val`, `crowd_auc_unseen_templates` (beside `_length` and `_loglik` baselines) and
`crowd_cost_fraction` (the crowd's term's added time per caption at N = 8, target <= 0.30):
bench/crowd_figures.py.

`captions_per_s_64_plain` and `captions_per_s_64_tastes` load one `memebot engine` at 64 HTTP
clients twice: requests naming no server, then requests spread over 100 servers, each with a
random taste of its own written to a temporary models location (target: tastes >= 60% of plain).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from harness.engine import engine_process
from memebot.settings import Settings


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def reference_ms_per_caption(model: Any, captions: int = 2) -> tuple[float, float]:
    """The article's loop: a 128-char row rebuilt and `predict`ed for every character."""
    from engine.decoding.seed_cnn import encode_rows, row_prefix
    from memebot.artifact.configs import SeedCNNConfig
    from memebot.artifact.vocab import Vocab
    from training.models import seed_cnn

    vocab: Vocab = model.vocab
    net = seed_cnn.build(SeedCNNConfig(), vocab.size)
    rng = np.random.default_rng(0)
    per_char, per_caption = [], []
    for _ in range(captions):
        text, box, t0 = "", 0, time.perf_counter()
        while box < 2 and len(text) < 48:  # a typical two-box caption length
            row = encode_rows(vocab, [row_prefix(61544, box) + text], 128)
            c0 = time.perf_counter()
            probs = net.predict(row, verbose=0)[0]
            per_char.append((time.perf_counter() - c0) * 1000)
            top = probs.max()
            cands = np.flatnonzero(probs >= rng.uniform(0.1, 1) * top)
            ch = vocab.decode([int(rng.choice(cands))]) or "a"
            text += ch
            box += ch == "|"
        per_caption.append((time.perf_counter() - t0) * 1000 * 48 / max(len(text), 1))
    return statistics.median(per_char), statistics.median(per_caption)


def decode_latencies(model: Any, method: str, n: int, candidates: int = 1) -> list[float]:
    """Milliseconds per request of one caption, alone, written as the best of `candidates`:
    the decoding and the scored pick (every reply carries `score` and `score_parts`)."""
    from engine.decoding.batch import run_jobs
    from engine.decoding.jobs import CaptionRequest, make_job
    from engine.decoding.pickers import Decoding
    from engine.schema import DEFAULT_BEAM_WIDTH, default_min_score

    slugs = [e.slug for e in model.templates.entries if e.slot] or ["any"]
    out = []
    for i in range(n):
        req = CaptionRequest(
            slugs[i % len(slugs)],
            2,
            decoding=Decoding(
                method, min_score=default_min_score(method), beam_width=DEFAULT_BEAM_WIDTH
            ),
            seed=i,
            n_candidates=candidates,
        )
        t0 = time.perf_counter()
        job = make_job(model, req)
        run_jobs(model, [job])
        job.captions()  # the pick and its scores, as the engine's decoding thread runs them
        out.append((time.perf_counter() - t0) * 1000)
    return out


def stepped_nats(model: Any, captions: list[Any], batch: int = 256) -> float:
    """Mean nats/char of `captions` (every character and end-of-box marker predicted) through
    the model's decoding step, as `memebot eval` measures through Keras: it shows what the
    step's arithmetic (float16 kernel or float32 NumPy) costs in quality."""
    from memebot.artifact.vocab import BOS

    total, count = 0.0, 0
    for at in range(0, len(captions), batch):
        part = captions[at : at + batch]
        ids = [model.vocab.encode(c.text) for c in part]
        conds = np.array([model.condition(model.templates.get(c.template)) for c in part])
        T = max(len(t) for t in ids)
        state = model.initial_state(len(part))
        prev = np.full(len(part), BOS)
        boxes = np.zeros(len(part), dtype=np.int64)
        for t in range(T):
            logp, state = model.step(state, prev, boxes, conds)
            for i, seq in enumerate(ids):
                if t < len(seq):
                    total -= float(logp[i, seq[t]])
                    count += 1
            prev = np.array([seq[t] if t < len(seq) else BOS for seq in ids])
            boxes += prev == model.vocab.box_end_id
    return total / count


STEP_ROWS = (1, 8, 64, 256)


def step_ms(model: Any, steps: int = 20) -> dict[str, float]:
    """Milliseconds per batched model call (`LoadedModel.step`, log-softmax included) at each
    of STEP_ROWS rows, after one untimed call at that size (the tf decoder's compile)."""
    out = {}
    for rows in STEP_ROWS:
        chars = np.full(rows, model.vocab.space_id)
        zeros = np.zeros(rows, dtype=np.int64)
        state = model.initial_state(rows)
        _, state = model.step(state, chars, zeros, zeros)
        t0 = time.perf_counter()
        for _ in range(steps):
            _, state = model.step(state, chars, zeros, zeros)
        out[str(rows)] = (time.perf_counter() - t0) * 1000 / steps
    return out


def render_latencies(settings: Settings, n: int) -> list[float]:
    from PIL import Image

    from engine.catalog import Catalog
    from engine.render import placeholder, render

    t = Catalog.load().lookup("distracted-boyfriend")
    path = settings.images_dir / (t.image or "")
    img = Image.open(path) if path.is_file() else placeholder(name=t.name, size=(1200, 800))
    img.load()
    texts = ["me", "a new side project i will never finish", "the side project from last week"]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        render(image=img, boxes=t.layout(3), texts=texts, fmt="jpeg", max_width=1200)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def real_lengths(prepared: Any) -> dict[tuple[str, int | None], list[int]]:
    """Real caption lengths per (template, box count), and per (template, None) for all."""
    out: dict[tuple[str, int | None], list[int]] = {}
    for c in prepared.captions("all"):
        out.setdefault((c.template, None), []).append(len(c.text))
        out.setdefault((c.template, len(c.boxes)), []).append(len(c.text))
    return out


def length_ratios(
    model: Any,
    real: dict[tuple[str, int | None], list[int]],
    per_template: int,
    method: str,
    candidates: int = 1,
) -> tuple[dict[str, float], dict[str, float], int]:
    """Generated/real mean caption length per template, default options (the template's box
    count) but `method` and `candidates` per caption. Returns ratios against the real captions
    with that box count, against all real captions of the template, and how many generated
    captions overran `max_len`."""
    from engine.decoding.batch import run_jobs
    from engine.decoding.jobs import CaptionRequest, make_job
    from engine.decoding.pickers import Decoding

    jobs = []
    for slug in sorted({t for t, n in real if n is None}):
        e = model.templates.get(slug)
        n_boxes = e.box_count if e else 2
        jobs += [
            make_job(
                model,
                CaptionRequest(
                    slug, n_boxes, decoding=Decoding(method), seed=i, n_candidates=candidates
                ),
            )
            for i in range(per_template)
        ]
    run_jobs(model, jobs)
    gen: dict[str, list[int]] = {}
    overruns = 0
    for j in jobs:
        text = j.captions()[0].text
        overruns += len(text) > j.req.max_len or len(j.captions()[0].boxes) != j.req.n_boxes
        gen.setdefault(j.req.template, []).append(len(text))
    n_boxes_of = {j.req.template: j.req.n_boxes for j in jobs}
    same = {
        s: statistics.mean(g) / statistics.mean(real.get((s, n_boxes_of[s])) or real[(s, None)])
        for s, g in gen.items()
    }
    every = {s: statistics.mean(g) / statistics.mean(real[(s, None)]) for s, g in gen.items()}
    return same, every, overruns


async def http_load(
    url: str, clients: int, seconds: float, servers: list[str] | None = None
) -> dict[str, float]:
    """`clients` clients posting memes for `seconds`; with `servers`, each request names one
    of them in turn (their tastes pick)."""
    import aiohttp

    lat: list[float] = []
    errors = tasted = 0
    deadline = time.perf_counter() + seconds

    async def client(i: int, http: aiohttp.ClientSession) -> None:
        nonlocal errors, tasted
        k = 0
        while time.perf_counter() < deadline:
            body: dict[str, Any] = {"template": "success-kid", "image": False}
            body["seed"] = i * 100_000 + k
            if servers:
                body["server"] = servers[(i + k * clients) % len(servers)]
            t0 = time.perf_counter()
            async with http.post(f"{url}/v1/memes", json=body) as r:
                data = await r.read()
                if r.status == 200:
                    lat.append((time.perf_counter() - t0) * 1000)
                    tasted += b'"taste"' in data  # the server's taste was in the score
                else:
                    errors += 1
            k += 1

    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        elapsed = time.perf_counter() - t0
    return {
        "clients": clients,
        "captions_per_s": len(lat) / elapsed,
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "p99_ms": pct(lat, 99),
        "errors": errors,
        "tasted_share": tasted / max(len(lat), 1),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def engine_env(decoder: str | None) -> dict[str, str]:
    """A deep queue (the load test's clients never see 503) and the decoder asked for."""
    return {"MEMEBOT_MAX_QUEUE": "4096", **({"MEMEBOT_DECODER": decoder} if decoder else {})}


def startup(model_dir: Path, decoder: str, requests: int = 20) -> dict[str, float]:
    """Start-up time, RSS once ready and RSS after `requests` rendered memes."""
    with engine_process(model_dir, env=engine_env(decoder)) as engine:
        proc, url = engine.proc, engine.url
        ready_mb = rss_mb(proc.pid)
        for i in range(requests):
            body = json.dumps({"template": "success-kid", "seed": i}).encode()
            req = urllib.request.Request(
                f"{url}/v1/memes", body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
        return {
            "startup_s": engine.start_s,
            "rss_ready_mb": ready_mb,
            "rss_mb": rss_mb(proc.pid),
        }


def run_http(
    model_dir: Path, seconds: float, decoder: str
) -> tuple[list[dict[str, float]], float, float]:
    """HTTP load at 1, 8 and 64 clients; returns the results, RSS after them, start-up time."""
    with engine_process(model_dir, env=engine_env(decoder)) as engine:
        results = [asyncio.run(http_load(engine.url, c, seconds)) for c in (1, 8, 64)]
        return results, rss_mb(engine.proc.pid), engine.start_s


def write_random_tastes(models_dir: Path, base_version: str, n: int, seed: int = 0) -> list[str]:
    """`n` servers' tastes of random weights (the size a fitted taste has) for `base_version`,
    each its server's active one; returns the server ids."""
    from memebot import taste_file

    rng = np.random.default_rng(seed)
    servers = []
    for g in range(n):
        gid = 900_000_000_000_000_000 + g  # snowflake-sized
        weights = rng.normal(0.0, 0.5, taste_file.TASTE_BUCKETS).astype(np.float16)
        scorer = taste_file.TasteScorer(
            weights=weights, bias=0.0, guild_id=gid, base_version=base_version, version=1
        )
        taste_file.save_taste(taste_file.taste_file(models_dir, gid, 1), scorer)
        taste_file.write_active(models_dir, gid, 1)
        servers.append(str(gid))
    return servers


def run_tastes(model_dir: Path, seconds: float, decoder: str, n: int = 100) -> dict[str, float]:
    """Captions/s at 64 clients naming no server, then spread over `n` servers' tastes."""
    import tempfile

    from memebot.artifact.meta import read_meta

    version = read_meta(model_dir).version
    with tempfile.TemporaryDirectory(prefix="memebot-tastes-") as tmp:
        servers = write_random_tastes(Path(tmp), version, n)
        env = {**engine_env(decoder), "MEMEBOT_MODELS_DIR": tmp}
        with engine_process(model_dir, env=env) as engine:
            asyncio.run(http_load(engine.url, 8, min(2.0, seconds)))  # warm the engine up
            plain = asyncio.run(http_load(engine.url, 64, seconds))
            tastes = asyncio.run(http_load(engine.url, 64, seconds, servers))
    return {
        "captions_per_s_64_plain": plain["captions_per_s"],
        "captions_per_s_64_tastes": tastes["captions_per_s"],
        "tastes_vs_plain": tastes["captions_per_s"] / plain["captions_per_s"],
        "tastes_servers": n,
        "tastes_p50_ms_64": tastes["p50_ms"],
        "plain_p50_ms_64": plain["p50_ms"],
        "tastes_errors": tastes["errors"] + plain["errors"],
        "tastes_used_share": tastes["tasted_share"],  # replies whose score had a taste term
    }


def plot(results: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax1 = plt.subplots(figsize=(7, 4))
    xs = [r["clients"] for r in results]
    ax1.plot(xs, [r["captions_per_s"] for r in results], "o-", label="captions/s")
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("concurrent clients")
    ax1.set_ylabel("captions/s")
    ax2 = ax1.twinx()
    for key, style in (("p50_ms", "--"), ("p99_ms", ":")):
        ax2.plot(xs, [r[key] for r in results], "s" + style, color="tab:red", label=key)
    ax2.set_ylabel("latency (ms)")
    fig.legend(loc="upper left", bbox_to_anchor=(0.1, 0.88))
    fig.suptitle("memebot engine over HTTP, text only (2-core CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    from memebot.choices import DECODERS

    settings = Settings.from_env()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", type=Path, default=settings.model_dir)
    p.add_argument("--seconds", type=float, default=8.0, help="HTTP load per concurrency level")
    p.add_argument("--captions", type=int, default=200, help="in-process captions timed per method")
    p.add_argument(
        "--per-template", type=int, default=100, help="captions per template for lengths"
    )
    p.add_argument(
        "--val-captions", type=int, default=2000, help="val captions scored through each step"
    )
    p.add_argument(
        "--crowd-captions",
        type=int,
        default=500,
        help="captions per set for the crowd scorer's likelihood baseline (bench/crowd_figures.py)",
    )
    p.add_argument("--plot", type=Path, default=None, help="write the latency/throughput plot here")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--decoder",
        choices=DECODERS,
        default=settings.decoder,
        help="the decoding step measured (MEMEBOT_DECODER for the engine it starts too)",
    )
    p.add_argument(
        "--tastes-only",
        action="store_true",
        help="only captions/s at 64 clients with no taste and with 100 servers' tastes",
    )
    p.add_argument(
        "--startup-only",
        action="store_true",
        help="only start `memebot engine`: startup_s, RSS when ready and after 20 memes",
    )
    args = p.parse_args()
    settings = settings.model_copy(update={"decoder": args.decoder})
    if args.startup_only:
        print(json.dumps(startup(args.model, args.decoder), indent=None if args.json else 1))
        return 0
    if args.tastes_only:
        got = run_tastes(args.model, args.seconds, args.decoder)
        print(json.dumps(got, indent=None if args.json else 1))
        return 0

    from bench.caption_stats import engine_figures as caption_figures
    from bench.crowd_figures import crowd_auc_figures, crowd_cost
    from engine.decoding.loader import load_model
    from engine.service import load_engine_model
    from memebot.decoding import DEFAULT_CANDIDATES, DEFAULT_METHOD
    from training.prepare import prepare

    # The engine's step (--decoder; auto: the compiled float16 kernel where it was built, the
    # tf step where TensorFlow sees a GPU) and, side by side, the float32 NumPy step.
    model = load_engine_model(settings, args.model)
    numpy_model = load_model(args.model, decoder="numpy")
    steps = step_ms(model)
    steps_numpy = step_ms(numpy_model)
    ref_char, ref_caption = reference_ms_per_caption(model)
    thr = decode_latencies(model, "threshold", args.captions)
    thr_numpy = decode_latencies(numpy_model, "threshold", args.captions)
    cal = decode_latencies(model, "calibrated", args.captions)
    # The default style as the API writes it: the best of DEFAULT_CANDIDATES per caption.
    default = decode_latencies(model, DEFAULT_METHOD, args.captions, DEFAULT_CANDIDATES)
    beam = decode_latencies(model, "beam", max(20, args.captions // 4))
    rend = render_latencies(settings, 50)
    prepared = prepare(settings.data_dir, cache_dir=settings.cache_dir)  # read once, used twice
    real = real_lengths(prepared)
    val = prepared.captions("val")[: args.val_captions]
    nats = stepped_nats(model, val)
    nats_numpy = stepped_nats(numpy_model, val)
    lengths, lengths_any, overruns = length_ratios(
        model, real, args.per_template, DEFAULT_METHOD, DEFAULT_CANDIDATES
    )
    article, _, _ = length_ratios(model, real, args.per_template, "threshold")
    # how much each style's captions read like people's (bench/caption_stats.py)
    captions = caption_figures(model, prepared)
    # the crowd scorer beside its baselines, and its term's cost at N = 8
    crowd = crowd_auc_figures(args.model, settings.data_dir, prepared, args.crowd_captions)
    crowd |= crowd_cost(settings, args.model, max(20, args.captions // 2))

    def worst(r: dict[str, float]) -> tuple[str, float]:
        return max(r.items(), key=lambda kv: abs(kv[1] - 1))

    http, rss, start_s = run_http(args.model, args.seconds, args.decoder)
    tastes = run_tastes(args.model, args.seconds, args.decoder)
    if args.plot:
        plot(http, args.plot)
    result = {
        "model": model.version,
        "decoder": args.decoder,
        "step_backend": model.step_backend,
        "step_ms": steps,
        "step_ms_numpy_step": steps_numpy,
        "ref_ms_per_char": ref_char,
        "ref_ms_per_caption": ref_caption,
        "threshold_p50_ms": pct(thr, 50),
        "threshold_p95_ms": pct(thr, 95),
        "threshold_speedup_vs_ref": ref_caption / pct(thr, 50),
        "threshold_p50_ms_numpy_step": pct(thr_numpy, 50),
        "threshold_p95_ms_numpy_step": pct(thr_numpy, 95),
        "val_captions_stepped": len(val),
        "val_nats_step": nats,
        "val_nats_numpy_step": nats_numpy,
        "calibrated_p50_ms": pct(cal, 50),
        "calibrated_p95_ms": pct(cal, 95),
        # the default style at its N (target p50 <= 25 ms), beside threshold at N = 1 (<= 10)
        "default_method": DEFAULT_METHOD,
        "default_n_candidates": DEFAULT_CANDIDATES,
        "default_p50_ms": pct(default, 50),
        "default_p95_ms": pct(default, 95),
        "beam5_p50_ms": pct(beam, 50),
        "beam5_p95_ms": pct(beam, 95),
        "http": http,
        "http_captions_per_s_64": http[-1]["captions_per_s"],
        **tastes,
        "render_p50_ms": pct(rend, 50),
        "render_p95_ms": pct(rend, 95),
        "rss_mb": rss,
        "startup_s": start_s,
        "length_ratio_worst": worst(lengths)[1],
        "length_ratio_worst_template": worst(lengths)[0],
        "length_ratio_mean": statistics.mean(lengths.values()),
        "length_ratio_outside_20pct": sum(abs(v - 1) > 0.2 for v in lengths.values()),
        "length_ratio_worst_any_box_count": worst(lengths_any)[1],
        "length_ratio_worst_any_box_count_template": worst(lengths_any)[0],
        "length_overruns": overruns,
        "threshold_length_ratio_worst": worst(article)[1],
        "threshold_length_ratio_mean": statistics.mean(article.values()),
        **captions,
        **crowd,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
