"""Fitting and measuring the crowd scorer (memebot/crowd.py) on Imgflip's own votes.

Labels. Every caption of the ImgFlip575K files carries `views` and `img-votes` (ints, or
strings with thousands separators). The captions are the training corpus as `prepare` cleans
and splits it (training/cleaning.py, training/prepare.py: same rule, same cache), each joined
to the votes of its first occurrence in the raw files (cleaning keeps the first of a template's
duplicates). Captions seen fewer than `min_views` (50) times are dropped: their votes per view
is mostly noise. Within each template, votes per view at or above the template's 75th
percentile is label 1 (top quartile), at or below its 25th is label 0 (bottom), the middle
half is dropped; the percentiles are over all of the template's kept captions, every split.
A template whose percentiles coincide (nothing to tell apart) gives no rows. Ties sit at the
edges: a fifth of Imgflip captions have no votes, so a bottom "quartile" can be larger.

Held-out templates. `HELD_OUT` templates, chosen by a hash of their names among those with
enough rows, are left out of fitting entirely, so a figure on them is one on templates the
scorer never saw.

Measure. ROC AUC of a score separating label 1 from label 0 within each template (pairs of
one top and one bottom caption of the same template, pooled over templates: ranking is what
best-of-N does within one request). Reported on (a) the val split of the fitted templates and
(b) the held-out templates (their train and val captions; the test split stays untouched),
beside caption length and the generator's per-character log-likelihood (teacher-forced through
engine.decoding, on a sample); a baseline's AUC is also given with its better sign, which is
what the scorer is held against.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memebot.artifact.meta import read_meta
from memebot.crowd import CrowdScorer
from memebot.errors import DataError
from memebot.ngrams import N_BUCKETS, hash_features
from training.cleaning import normalise_box
from training.data import BOX_END, _load_json, slugify
from training.prepare import Prepared, prepare

MIN_VIEWS = 50
HELD_OUT = 8
MIN_HELD_OUT_ROWS = 200  # a held-out template must have this many labelled rows
L2_GRID = (0.3, 1.0, 3.0, 10.0)  # L2 strengths tried on an inner slice of train
LOGLIK_CAPTIONS = 3000  # per evaluation set, for the likelihood baseline
Progress = Callable[[str], None]


def _count(value: object) -> int | None:
    """`2426`, `"2,426"` -> 2426; anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = value.replace(",", "").strip()
        return int(digits) if digits.isdigit() else None
    return None


def read_votes(root: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(template slug, cleaned text `box|box|`) -> (views, votes), first occurrence wins."""
    mdir = root / "memes"
    files = sorted(mdir.glob("*.json")) if mdir.is_dir() else []
    if not files:
        raise DataError(f"{mdir}: no memes/*.json files (the crowd scorer needs their votes)")
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for path in files:
        memes = _load_json(path)
        if not isinstance(memes, list):
            raise DataError(f"{path}: expected a JSON list of memes")
        slug = slugify(path.stem)
        for meme in memes:
            if not isinstance(meme, dict) or not isinstance(meme.get("boxes"), list):
                continue
            meta = meme.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            views, votes = _count(meta.get("views")), _count(meta.get("img-votes"))
            if views is None or votes is None:
                continue
            text = "".join(normalise_box(str(b)) + BOX_END for b in meme["boxes"])
            out.setdefault((slug, text), (views, votes))
    return out


@dataclass
class Rows:
    """Labelled captions: text, template, label (1 top quartile, 0 bottom), split."""

    texts: list[str]
    templates: list[str]
    labels: np.ndarray  # int8
    splits: list[str]

    def where(self, keep: np.ndarray) -> Rows:
        idx = np.flatnonzero(keep)
        return Rows(
            [self.texts[i] for i in idx],
            [self.templates[i] for i in idx],
            self.labels[idx],
            [self.splits[i] for i in idx],
        )

    def __len__(self) -> int:
        return len(self.texts)


def label_rows(
    prep: Prepared, votes: dict[tuple[str, str], tuple[int, int]], min_views: int = MIN_VIEWS
) -> tuple[Rows, dict[str, int]]:
    """Top and bottom quartiles of votes per view within each template (module docstring),
    and a count of what was dropped on the way."""
    by_template: dict[str, list[tuple[str, str, float]]] = {}
    stats = {"captions": 0, "no_votes_record": 0, "few_views": 0, "middle": 0, "flat": 0}
    for split in ("train", "val", "test"):
        for c in prep.splits[split]:
            stats["captions"] += 1
            vv = votes.get((c.template, c.text))
            if vv is None:
                stats["no_votes_record"] += 1
                continue
            views, ups = vv
            if views < min_views:
                stats["few_views"] += 1
                continue
            by_template.setdefault(c.template, []).append((c.text, split, ups / views))
    texts, templates, labels, splits = [], [], [], []
    for slug in sorted(by_template):
        items = by_template[slug]
        rates = np.array([r for _, _, r in items])
        lo, hi = np.quantile(rates, [0.25, 0.75])
        if lo >= hi:
            stats["flat"] += len(items)
            continue
        for text, split, r in items:
            if lo < r < hi:
                stats["middle"] += 1
                continue
            texts.append(text)
            templates.append(slug)
            labels.append(1 if r >= hi else 0)
            splits.append(split)
    stats["labelled"] = len(texts)
    return Rows(texts, templates, np.array(labels, dtype=np.int8), splits), stats


def held_out_templates(rows: Rows, k: int = HELD_OUT) -> list[str]:
    """`k` templates with MIN_HELD_OUT_ROWS rows or more, chosen by a hash of the slug (so
    fixed by the data, whoever fits)."""
    counts: dict[str, int] = {}
    for t in rows.templates:
        counts[t] = counts.get(t, 0) + 1
    big = [t for t, n in counts.items() if n >= MIN_HELD_OUT_ROWS]
    return sorted(big, key=lambda t: hashlib.sha1(f"crowd-held-out:{t}".encode()).digest())[:k]


def auc(scores: np.ndarray, labels: np.ndarray, groups: Sequence[str] | None = None) -> float:
    """ROC AUC of `scores` for label 1 over label 0 (ties count half); with `groups`, only
    pairs within a group count (pooled over groups). NaN when no pair exists."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    keys = np.zeros(len(scores), dtype=np.int64)
    if groups is not None:
        _, keys = np.unique(np.asarray(groups), return_inverse=True)
    won = pairs = 0.0
    for g in np.unique(keys):
        s, y = scores[keys == g], labels[keys == g]
        n1, n0 = int((y == 1).sum()), int((y == 0).sum())
        if not n1 or not n0:
            continue
        ranks = _average_ranks(s)
        won += ranks[y == 1].sum() - n1 * (n1 + 1) / 2  # Mann-Whitney U
        pairs += n1 * n0
    return won / pairs if pairs else float("nan")


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    xs = x[order]
    ranks = np.empty(len(x))
    starts = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1]]))
    ends = np.concatenate([starts[1:], [len(x)]])
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2  # 1-based mean rank of a tie
    return ranks


def _matrix(texts: Sequence[str]) -> Any:
    from scipy.sparse import csr_matrix

    h = hash_features(texts, N_BUCKETS)
    m = csr_matrix((h.values, h.indices, h.indptr), shape=(h.rows, h.n_buckets))
    m.sum_duplicates()
    return m


def fit_logistic(
    texts: Sequence[str], labels: np.ndarray, *, l2: float = 1.0
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression on the hashed features: (weights float32, bias)."""
    from sklearn.linear_model import LogisticRegression

    if len(set(np.asarray(labels).tolist())) < 2:
        raise DataError("the crowd scorer needs captions of both labels to fit")
    clf = LogisticRegression(C=1.0 / l2, solver="liblinear", max_iter=1000)
    clf.fit(_matrix(texts), np.asarray(labels))
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])


def choose_l2(rows: Rows, progress: Progress) -> tuple[float, dict[str, float]]:
    """The L2 strength of L2_GRID with the best within-template AUC on a tenth of the fitting
    rows (by caption hash), fitted on the other nine tenths; and every strength's AUC."""
    inner = np.array([hashlib.sha1(t.encode()).digest()[0] < 26 for t in rows.texts])
    fit, check = rows.where(~inner), rows.where(inner)
    tried: dict[str, float] = {}
    for l2 in L2_GRID:
        w, b = fit_logistic(fit.texts, fit.labels, l2=l2)
        a = auc(CrowdScorer(w, b, "-").score(check.texts), check.labels, check.templates)
        progress(f"  l2 {l2:g}: inner AUC {a:.4f}")
        tried[f"{l2:g}"] = a
    best = max(L2_GRID, key=lambda l2: tried[f"{l2:g}"])
    return best, tried


@dataclass
class Split:
    """The rows fitted on, the val rows of those templates, the held-out templates' rows."""

    fit: Rows
    val: Rows
    unseen: Rows
    held_out: list[str]


def split_rows(rows: Rows, held_out: Sequence[str] | int = HELD_OUT) -> Split:
    """`held_out`: the templates left out of fitting, or how many held_out_templates picks."""
    held = held_out_templates(rows, held_out) if isinstance(held_out, int) else list(held_out)
    in_held = np.array([t in held for t in rows.templates])
    split = np.array(rows.splits)
    return Split(
        fit=rows.where(~in_held & (split == "train")),
        val=rows.where(~in_held & (split == "val")),
        unseen=rows.where(in_held & (split != "test")),
        held_out=held,
    )


def load_rows(
    data: Path,
    cache_dir: Path | None,
    min_views: int,
    progress: Progress,
    *,
    held_out: Sequence[str] | int = HELD_OUT,
) -> Split:
    progress(f"reading and cleaning {data} (cached after the first run)")
    prep = prepare(data, cache_dir=cache_dir)
    votes = read_votes(data)
    rows, stats = label_rows(prep, votes, min_views)
    progress("labels: " + ", ".join(f"{k} {v:,}" for k, v in stats.items()))
    if not len(rows):
        raise DataError(f"{data}: no captions with votes left to label")
    return split_rows(rows, held_out)


def _sample(rows: Rows, n: int) -> Rows:
    """At most `n` rows, the same ones on every run (by caption hash)."""
    if len(rows) <= n:
        return rows
    keys = np.array(
        [
            hashlib.sha1(f"{t}\t{x}".encode()).digest()[:8]
            for t, x in zip(rows.templates, rows.texts, strict=True)
        ]
    )
    keep = np.zeros(len(rows), dtype=bool)
    keep[np.argsort(keys)[:n]] = True
    return rows.where(keep)


def evaluate_set(
    scorer: CrowdScorer, rows: Rows, model_dir: Path | None, loglik_captions: int
) -> dict[str, Any]:
    """The scorer's and the baselines' within-template AUCs on `rows`."""
    scores = scorer.score(rows.texts)
    length = np.array([len(t) for t in rows.texts], dtype=np.float64)
    out: dict[str, Any] = {
        "rows": len(rows),
        "templates": len(set(rows.templates)),
        "auc_crowd": auc(scores, rows.labels, rows.templates),
        "auc_length": auc(length, rows.labels, rows.templates),
    }
    out["auc_length_best_sign"] = max(out["auc_length"], 1 - out["auc_length"])
    if model_dir is not None and loglik_captions > 0:
        from engine.decoding.loader import load_model
        from engine.decoding.teacher import caption_logprobs

        sub = _sample(rows, loglik_captions)
        model = load_model(model_dir)
        lp = caption_logprobs(model, sub.templates, sub.texts)
        per_char = lp / np.array([len(t) for t in sub.texts])
        out["loglik_rows"] = len(sub)
        out["auc_loglik"] = auc(per_char, sub.labels, sub.templates)
        out["auc_loglik_best_sign"] = max(out["auc_loglik"], 1 - out["auc_loglik"])
        out["auc_crowd_on_loglik_rows"] = auc(scorer.score(sub.texts), sub.labels, sub.templates)
        out["nats_per_char_loglik_rows"] = float(-lp.sum() / sum(len(t) for t in sub.texts))
    return out


def evaluate(
    scorer: CrowdScorer,
    split: Split,
    model_dir: Path | None,
    *,
    loglik_captions: int = LOGLIK_CAPTIONS,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    progress(f"evaluating on val ({len(split.val):,} rows)")
    val = evaluate_set(scorer, split.val, model_dir, loglik_captions)
    progress(f"evaluating on {len(split.held_out)} held-out templates ({len(split.unseen):,} rows)")
    unseen = evaluate_set(scorer, split.unseen, model_dir, loglik_captions)
    sets = (val, unseen)
    beats_length = all(s["auc_crowd"] > s["auc_length_best_sign"] for s in sets)
    measured = all("auc_loglik" in s for s in sets)
    beats_loglik = (
        all(s["auc_crowd_on_loglik_rows"] > s["auc_loglik_best_sign"] for s in sets)
        if measured
        else None  # not measured (no model, or --loglik-captions 0)
    )
    return {
        "val": val,
        "unseen_templates": unseen,
        "held_out": split.held_out,
        "beats_length": beats_length,
        "beats_loglik": beats_loglik,
        "beats_both": beats_length and bool(beats_loglik),
    }


def fit(
    data: Path,
    model_dir: Path,
    *,
    cache_dir: Path | None = None,
    min_views: int = MIN_VIEWS,
    l2: float | None = None,
    loglik_captions: int = LOGLIK_CAPTIONS,
    held_out: int = HELD_OUT,
    progress: Progress = lambda _: None,
) -> CrowdScorer:
    """Fit the scorer for the model at `model_dir` on `data` and measure it (module
    docstring); the figures go into the scorer's header."""
    version = read_meta(model_dir).version
    t0 = time.monotonic()
    split = load_rows(data, cache_dir, min_views, progress, held_out=held_out)
    progress(
        f"fitting on {len(split.fit):,} train rows of {len(set(split.fit.templates))} templates; "
        f"held out: {', '.join(split.held_out)}"
    )
    tried: dict[str, float] = {}
    if l2 is None:
        l2, tried = choose_l2(split.fit, progress)
    progress(f"fitting with l2 {l2:g}")
    w, b = fit_logistic(split.fit.texts, split.fit.labels, l2=l2)
    labels: dict[str, Any] = {
        "rule": "votes per view, top vs bottom quartile within template",
        "min_views": min_views,
        "l2": l2,
        "l2_inner_auc": tried,
        "fit_rows": len(split.fit),
        "held_out_templates": split.held_out,
    }
    scorer = CrowdScorer(w, b, version, labels=labels)
    scorer.weights = scorer.weights.astype(np.float16).astype(np.float32)  # what is saved
    scorer.metrics = evaluate(
        scorer, split, model_dir, loglik_captions=loglik_captions, progress=progress
    )
    scorer.metrics["fit_seconds"] = round(time.monotonic() - t0, 1)
    return scorer


def summary(metrics: dict[str, Any]) -> str:
    """The figures as a small table."""
    lines = [f"{'set':<18}{'rows':>8}{'tmpl':>6}{'crowd':>8}{'length':>8}{'loglik':>8}"]
    for name in ("val", "unseen_templates"):
        s = metrics[name]
        ll = s.get("auc_loglik")
        lines.append(
            f"{name:<18}{s['rows']:>8,}{s['templates']:>6}{s['auc_crowd']:>8.3f}"
            f"{s['auc_length']:>8.3f}{'' if ll is None else f'{ll:8.3f}'}"
        )

    def verdict(beats: bool) -> str:
        return "beats" if beats else "does NOT beat"

    said = f"the scorer {verdict(metrics['beats_length'])} caption length"
    if metrics["beats_loglik"] is None:
        said += " (the likelihood baseline was not measured)"
    else:
        said += f" and {verdict(metrics['beats_loglik'])} the model's likelihood"
    lines.append(f"{said}, each baseline at its better sign, on both sets")
    return "\n".join(lines)


def dumps(metrics: dict[str, Any]) -> str:
    return json.dumps(metrics, indent=1, sort_keys=True)
