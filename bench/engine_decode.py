"""bench/engine.py's in-process figures: one request's decoding (and its scored pick) at a
time, one batched model step, the article's reference loop, rendering, nats through the step,
and generated against real caption lengths."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

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
