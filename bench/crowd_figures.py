"""The crowd scorer's figures for bench/engine.py --json: its within-template AUCs beside the
two baselines, and what its term costs a caption in best-of-N.

`crowd_auc_*` run `memebot crowd eval`'s code (training/crowd.py) on the model's own
`crowd.npz` and its held-out templates, in the bench's run; the likelihood baseline is
teacher-forced on a bounded sample (`loglik_captions` per set) so the bench stays minutes long,
and the scorer's AUC on those same rows is reported beside it.

`crowd_cost_*` time the API's default method at N = 8 with the crowd's term (weight 0.3) and
without it (weight 0), one request of each in turn with the same seed, so a drift of the
machine's speed falls on both alike (target: the term adds <= 30% to a caption's time).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from memebot.settings import Settings

COST_CANDIDATES = 8
COST_WEIGHT = 0.3


def crowd_auc_figures(
    model_dir: Path, data_dir: Path, prepared: Any, loglik_captions: int
) -> dict[str, Any]:
    """The scorer's and the baselines' AUCs on val and on its held-out templates."""
    from memebot.artifact.meta import read_meta
    from memebot.crowd import CROWD_FILE, load_crowd
    from training.crowd import MIN_VIEWS, evaluate, label_rows, read_votes, split_rows

    scorer = load_crowd(model_dir / CROWD_FILE, read_meta(model_dir).version)
    held = scorer.labels.get("held_out_templates")
    if not isinstance(held, list):
        return {"crowd_error": f"{model_dir / CROWD_FILE}: names no held-out templates"}
    rows, _ = label_rows(prepared, read_votes(data_dir), MIN_VIEWS)
    got = evaluate(scorer, split_rows(rows, held), model_dir, loglik_captions=loglik_captions)
    out: dict[str, Any] = {}
    for key, name in (("val", "val"), ("unseen_templates", "unseen_templates")):
        s = got[key]
        out[f"crowd_auc_{name}"] = s["auc_crowd"]
        out[f"crowd_auc_{name}_rows"] = s["rows"]
        out[f"crowd_auc_{name}_length"] = s["auc_length"]
        out[f"crowd_auc_{name}_length_best_sign"] = s["auc_length_best_sign"]
        out[f"crowd_auc_{name}_loglik"] = s.get("auc_loglik")
        out[f"crowd_auc_{name}_loglik_best_sign"] = s.get("auc_loglik_best_sign")
        out[f"crowd_auc_{name}_on_loglik_rows"] = s.get("auc_crowd_on_loglik_rows")
        out[f"crowd_auc_{name}_loglik_rows"] = s.get("loglik_rows")
    out["crowd_beats_length"] = got["beats_length"]
    out["crowd_beats_loglik"] = got["beats_loglik"]
    out["crowd_held_out_templates"] = got["held_out"]
    return out


def crowd_cost(settings: Settings, model_dir: Path, captions: int) -> dict[str, Any]:
    """Milliseconds per caption at N = 8 with and without the crowd's term, interleaved."""
    from engine.decoding.batch import run_jobs
    from engine.decoding.jobs import CaptionRequest, make_job
    from engine.decoding.pickers import Decoding
    from engine.schema import DEFAULT_BEAM_WIDTH, default_min_score
    from engine.service import load_engine_model
    from memebot.decoding import DEFAULT_METHOD

    models = {
        w: load_engine_model(settings.model_copy(update={"crowd_weight": w}), model_dir)
        for w in (COST_WEIGHT, 0.0)
    }
    with_term = models[COST_WEIGHT]
    slugs = [e.slug for e in with_term.templates.entries if e.slot] or ["any"]
    decoding = Decoding(
        DEFAULT_METHOD, min_score=default_min_score(DEFAULT_METHOD), beam_width=DEFAULT_BEAM_WIDTH
    )
    times: dict[float, list[float]] = {w: [] for w in models}
    for i in range(captions):
        for w, model in models.items():
            req = CaptionRequest(
                slugs[i % len(slugs)], 2, decoding=decoding, seed=i, n_candidates=COST_CANDIDATES
            )
            t0 = time.perf_counter()
            job = make_job(model, req)
            run_jobs(model, [job])
            job.captions()  # the pick, where the term is scored
            times[w].append((time.perf_counter() - t0) * 1000)
    on, off = np.median(times[COST_WEIGHT]), np.median(times[0.0])
    return {
        "crowd_cost_method": DEFAULT_METHOD,
        "crowd_cost_n_candidates": COST_CANDIDATES,
        "crowd_cost_has_term": any(t.name == "crowd" for t, _ in with_term.scorer.terms),
        "crowd_cost_p50_ms_with": float(on),
        "crowd_cost_p50_ms_without": float(off),
        "crowd_cost_fraction": float(on / off - 1),  # target <= 0.30
        "crowd_cost_mean_fraction": float(np.mean(times[COST_WEIGHT]) / np.mean(times[0.0]) - 1),
    }
