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
clients twice, with the options the bot sends for its default style: requests naming no
server, then requests spread over 100 servers, each with a random taste of its own written to
a temporary models location (target: tastes >= 60% of plain).

The figures' code: bench/engine_decode.py (in-process) and bench/engine_http.py (a
`memebot engine` process under load).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.engine_decode import (
    decode_latencies,
    length_ratios,
    pct,
    real_lengths,
    reference_ms_per_caption,
    render_latencies,
    step_ms,
    stepped_nats,
)
from bench.engine_http import plot, run_http, run_tastes, startup
from memebot.settings import Settings


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
