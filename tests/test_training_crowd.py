"""Fitting and measuring the crowd scorer (training/crowd.py, `memebot crowd`): the votes as
Imgflip writes them, the quartile labels within a template, the AUC, a fit on a small dataset
whose votes follow its words, the console script, and the shipped scorer on the real data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from harness.factories import ENDINGS, OBJECTS, SUBJECTS, VERBS, scratch_env
from memebot.artifact.meta import read_meta
from memebot.cli import main
from memebot.crowd import CROWD_FILE, load_crowd
from memebot.settings import REPO_ROOT, Settings
from training.crowd import (
    MIN_VIEWS,
    _count,
    auc,
    evaluate,
    fit,
    label_rows,
    load_rows,
    read_votes,
)
from training.prepare import prepare

TEMPLATES = ["Success-Kid", "Two-Buttons", "Y-U-No", "Grumpy-Cat"]
SHIPPED = REPO_ROOT / "models" / "default"


def _voted_dir(root: Path, per_template: int = 700, seed: int = 0) -> Path:
    """Four templates whose captions' votes per view follow one word: "tacos" high,
    "taxes" low, otherwise in between; some captions have too few views."""
    rng = random.Random(seed)
    (root / "memes").mkdir(parents=True)
    (root / "templates").mkdir()
    for t, name in enumerate(TEMPLATES):
        memes = []
        for i in range(per_template):
            kind = rng.choice(["tacos", "taxes", "plain"])
            top = f"when {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
            bottom = f"{rng.choice(SUBJECTS)} {rng.choice(ENDINGS)} {i}"
            if kind != "plain":
                bottom = f"{bottom} {kind}"
            views = rng.randint(60, 5000) if i % 20 else rng.randint(1, 40)
            rate = {"tacos": 0.05, "taxes": 0.002, "plain": 0.01}[kind] * (1 + t / 4)
            votes = int(views * rate * rng.uniform(0.7, 1.3))
            memes.append(
                {
                    "url": "",
                    "post": "",
                    "metadata": {"views": f"{views:,}", "img-votes": votes},  # both spellings
                    "boxes": [top.upper(), bottom],
                }
            )
        (root / "memes" / f"{name}.json").write_text(json.dumps(memes))
        (root / "templates" / f"{name}.json").write_text(
            json.dumps({"title": name.replace("-", " "), "template_id": str(100 + t)})
        )
    return root


@pytest.fixture(scope="module")
def voted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _voted_dir(tmp_path_factory.mktemp("voted") / "imgflip")


def test_counts_as_imgflip_writes_them() -> None:
    assert _count(2426) == 2426 and _count("2,426") == 2426 and _count(" 17 ") == 17
    assert _count("n/a") is None and _count(None) is None and _count(True) is None
    assert _count("-3") is None


def test_votes_join_cleaned_captions(voted: Path, tmp_path: Path) -> None:
    votes = read_votes(voted)
    prep = prepare(voted, cache_dir=tmp_path)
    assert all((c.template, c.text) in votes for c in prep.splits["train"])
    assert all(isinstance(v, int) and isinstance(u, int) for v, u in votes.values())


def test_quartile_labels_within_template(voted: Path, tmp_path: Path) -> None:
    prep = prepare(voted, cache_dir=tmp_path)
    votes = read_votes(voted)
    rows, stats = label_rows(prep, votes, MIN_VIEWS)
    assert stats["few_views"] > 0 and stats["middle"] > 0
    assert stats["labelled"] == len(rows) < stats["captions"] * 0.6
    for t in set(rows.templates):
        y = rows.labels[np.array(rows.templates) == t]
        assert 0.3 < y.mean() < 0.7  # top and bottom quartiles of each template
    # the words carry it: tacos is top, taxes bottom, in every template alike
    tacos = np.array(["tacos" in x for x in rows.texts])
    taxes = np.array(["taxes" in x for x in rows.texts])
    assert rows.labels[tacos].mean() > 0.9 and rows.labels[taxes].mean() < 0.1
    # captions seen fewer than min_views times never get a label
    few = {k for k, (views, _) in votes.items() if views < MIN_VIEWS}
    assert not few & set(zip(rows.templates, rows.texts, strict=True))


def test_auc_is_mann_whitney_within_groups() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s, y = rng.normal(size=300), rng.integers(0, 2, 300)
    s[:50] = 0.0  # ties count half
    assert auc(s, y) == pytest.approx(roc_auc_score(y, s))
    # within groups only: a group offset that would help a pooled AUC does not count
    g = np.array(["a"] * 150 + ["b"] * 150)
    y2 = np.r_[np.ones(100), np.zeros(50), np.ones(50), np.zeros(100)]
    s2 = np.r_[np.full(150, 1.0), np.full(150, 0.0)]
    assert auc(s2, y2) > 0.6 and auc(s2, y2, list(g)) == 0.5
    assert np.isnan(auc(np.ones(3), np.ones(3)))


@pytest.mark.slow
def test_fit_finds_the_words_and_beats_both_baselines(
    voted: Path, tiny_model: Path, tmp_path: Path
) -> None:
    scorer = fit(voted, tiny_model, cache_dir=tmp_path, held_out=1, loglik_captions=300)
    m = scorer.metrics
    assert scorer.model_version == read_meta(tiny_model).version
    assert len(m["held_out"]) == 1 and m["held_out"] == scorer.labels["held_out_templates"]
    for name in ("val", "unseen_templates"):
        s = m[name]
        assert s["auc_crowd"] > 0.9 > s["auc_length_best_sign"], s
        assert s["auc_crowd_on_loglik_rows"] > s["auc_loglik_best_sign"], s
        assert s["loglik_rows"] <= 300
    assert m["beats_both"] and m["beats_length"] and m["beats_loglik"]
    good, bad = scorer.score(
        ["when my dog eats my pizza|dad again tacos|", "my dog|dad again taxes|"]
    )
    assert good > bad
    path = scorer.save(tmp_path / CROWD_FILE)
    assert load_crowd(path, scorer.model_version).metrics == json.loads(json.dumps(m))
    # eval again from the file, on the same held-out template: the same figures
    split = load_rows(voted, tmp_path, MIN_VIEWS, lambda _: None, held_out=m["held_out"])
    again = evaluate(load_crowd(path, None), split, None)
    assert again["val"]["auc_crowd"] == pytest.approx(m["val"]["auc_crowd"], abs=1e-6)


@pytest.mark.slow
def test_console_script(
    voted: Path,
    tiny_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in scratch_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "c.npz"
    base = ["--data", str(voted), "--model", str(tiny_model), "--loglik-captions", "50"]
    assert main(["crowd", "fit", *base, "--out", str(out), "--l2", "1", "--held-out", "1"]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}" in captured.out
    assert "fitting on" in captured.err  # progress goes to stderr
    assert main(["crowd", "eval", *base, "--scorer", str(out), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["val"]["auc_crowd"] > 0.9 and figures["beats_loglik"] is not None
    assert main(["crowd", "eval", *base[:4], "--scorer", str(out), "--loglik-captions", "0"]) == 0
    said = capsys.readouterr().out
    assert "beats caption length (the likelihood baseline was not measured)" in said
    # one-line errors, nothing written
    for argv, needle in [
        (["crowd", "fit", *base, "--out", str(out)], "already exists (--force"),
        (["crowd", "fit", *base, "--out", str(tmp_path / "x.npz"), "--l2", "0"], "--l2 0"),
        (["crowd", "fit", *base, "--min-views", "0"], "--min-views 0"),
        (["crowd", "fit", *base, "--out", str(tmp_path / "x.npz"), "--held-out", "-1"], "-1"),
        (["crowd", "eval", *base, "--scorer", str(tmp_path / "none.npz")], "missing"),
        (
            ["crowd", "eval", "--data", str(tmp_path / "nodata"), "--model", str(tiny_model)],
            "--data",
        ),
        (["crowd", "fit", "--data", str(voted), "--model", str(tmp_path)], "meta.json"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("memebot: error: ") and needle in err[0], err
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.realdata
@pytest.mark.slow
def test_shipped_crowd_scorer_on_real_data(real_data_dir: Path) -> None:
    """The shipped crowd.npz belongs to the shipped model, and its recorded figures are what
    the real data gives: it beats caption length on the val split and on templates it never
    saw (the likelihood baseline is in its header; recomputing it takes minutes)."""
    meta = read_meta(SHIPPED)
    scorer = load_crowd(SHIPPED / CROWD_FILE, meta.version)
    held = scorer.labels["held_out_templates"]
    split = load_rows(real_data_dir, Settings.from_env().cache_dir, MIN_VIEWS, print, held_out=held)
    m = evaluate(scorer, split, None)
    for name in ("val", "unseen_templates"):
        assert m[name]["auc_crowd"] == pytest.approx(scorer.metrics[name]["auc_crowd"], abs=1e-4)
        assert m[name]["auc_crowd"] > m[name]["auc_length_best_sign"]
        assert m[name]["rows"] == scorer.metrics[name]["rows"]
