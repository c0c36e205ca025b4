"""The crowd scorer (memebot/crowd.py): crowd.npz round trip, every refusal a ScorerError
naming the file, the score's shape and type, and a fitted scorer that finds a signal in words
where length has none."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.decoding.scoring import ScoreTerm
from harness.factories import npz_header, rewrite_npz
from memebot.crowd import CROWD_FILE, CrowdScorer, crowd_for, load_crowd
from memebot.errors import ArtifactError, ScorerError
from memebot.ngrams import N_BUCKETS
from training.crowd import auc, fit_logistic

VERSION = "char-gru-20261130T082656Z-8e67a9fe"


def _scorer(seed: int = 0) -> CrowdScorer:
    w = np.random.default_rng(seed).normal(0, 0.5, N_BUCKETS).astype(np.float32)
    return CrowdScorer(w, 0.25, VERSION, metrics={"auc_val": 0.6}, labels={"min_views": 50})


def test_round_trip(tmp_path: Path) -> None:
    s = _scorer()
    path = s.save(tmp_path / CROWD_FILE)
    back = load_crowd(path, VERSION)
    texts = ["me|my homework|", "when you see it|", "aaaand it's gone|"]
    assert np.array_equal(back.score(texts, "x"), s.score(texts, "x"))
    assert back.metrics == {"auc_val": 0.6} and back.labels == {"min_views": 50}
    assert back.model_version == VERSION and back.bias == 0.25
    assert path.stat().st_size < 200_000  # float16: ~128 KB
    assert not [p for p in tmp_path.iterdir() if p.name != CROWD_FILE]  # no temp file left
    assert path.stat().st_mode & 0o044 == 0o044  # readable like any other artifact file
    assert crowd_for(tmp_path, VERSION) is not None
    assert crowd_for(tmp_path / "none", VERSION) is None


def test_score_shape_dtype_and_order() -> None:
    s = _scorer()
    out = s.score(["a|b|", "c|", "", "me|my homework|the new season of my show|"], "t")
    assert out.shape == (4,) and out.dtype == np.float32 and np.isfinite(out).all()
    assert s.score([], "t").shape == (0,)
    assert s.name == "crowd"
    assert isinstance(s, ScoreTerm)  # what the engine's best-of-N adds to a model's scorer
    # the same caption scores the same wherever it stands in the batch
    assert s.score(["x|", "c|"], "t")[1] == pytest.approx(out[1])


def test_scoring_imports_no_training_library(tmp_path: Path) -> None:
    """Serving loads and scores with NumPy alone: no scikit-learn, SciPy or TensorFlow."""
    path = _scorer().save(tmp_path / CROWD_FILE)
    code = (
        "import sys; from pathlib import Path; from memebot.crowd import load_crowd;"
        f"s = load_crowd(Path({str(path)!r}), {VERSION!r}); s.score(['a|b|'], 't');"
        "print(sorted(m for m in ('sklearn', 'scipy', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_checksum_mismatch_refused(tmp_path: Path) -> None:
    path = _scorer().save(tmp_path / CROWD_FILE)
    with np.load(path) as z:
        w = z["weights"].copy()
    w[123] = np.float16(7.0)
    rewrite_npz(path, weights=w)
    with pytest.raises(ScorerError, match=r"crowd\.npz: checksum mismatch"):
        load_crowd(path, VERSION)


def test_other_model_refused(tmp_path: Path) -> None:
    path = _scorer().save(tmp_path / CROWD_FILE)
    with pytest.raises(ScorerError, match=r"fitted for model 'char-gru-2026.*not 'other-v2'"):
        load_crowd(path, "other-v2")
    assert load_crowd(path, None).model_version == VERSION  # evaluation reads any


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("format_version", 2, "version 2, this memebot reads"),
        ("format", "something-else", "format 'something-else'"),
        ("features", "ngrams-v0", "features 'ngrams-v0'"),
    ],
)
def test_unknown_version_refused(tmp_path: Path, field: str, value: object, match: str) -> None:
    path = _scorer().save(tmp_path / CROWD_FILE)
    header = npz_header(path)
    header[field] = value
    rewrite_npz(path, header=np.array(json.dumps(header)))
    with pytest.raises(ScorerError, match=match):
        load_crowd(path, VERSION)


def test_missing_and_corrupt_files_refused(tmp_path: Path) -> None:
    with pytest.raises(ScorerError, match="missing"):
        load_crowd(tmp_path / CROWD_FILE, VERSION)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ScorerError, match="corrupt"):
        load_crowd(bad, VERSION)
    half = tmp_path / "half.npz"
    data = _scorer().save(tmp_path / CROWD_FILE).read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError):  # ScorerError is an ArtifactError: one-line CLI errors
        load_crowd(half, VERSION)
    nohead = tmp_path / "nohead.npz"
    np.savez(nohead, weights=np.zeros(4, np.float16))
    with pytest.raises(ScorerError, match="corrupt"):
        load_crowd(nohead, VERSION)
    assert zipfile.is_zipfile(tmp_path / CROWD_FILE)


def test_save_rounds_to_what_is_stored(tmp_path: Path) -> None:
    s = _scorer()
    s.weights[0] = 0.1234567
    s.save(tmp_path / CROWD_FILE)
    assert s.weights[0] == np.float32(np.float16(0.1234567))
    s.weights[1] = np.inf
    with pytest.raises(ValueError):
        s.save(tmp_path / "inf.npz")
    assert not (tmp_path / "inf.npz").exists()


def _synthetic(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Captions whose label is carried by one word each ("dog" good, "tax" bad) and whose
    lengths are drawn the same way for both labels."""
    rng = np.random.default_rng(seed)
    fill = ["my", "when", "the", "you", "friend", "monday", "again", "really", "homework"]
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.random() < 0.5)
        words = list(rng.choice(fill, size=int(rng.integers(2, 9))))
        words.insert(int(rng.integers(0, len(words) + 1)), "dog" if y else "tax")
        cut = int(rng.integers(1, len(words)))
        texts.append(" ".join(words[:cut]) + "|" + " ".join(words[cut:]) + "|")
        labels.append(y)
    return texts, np.array(labels)


def test_fitted_scorer_beats_length_where_the_signal_is_in_words() -> None:
    train_x, train_y = _synthetic(600, 0)
    test_x, test_y = _synthetic(400, 1)
    w, b = fit_logistic(train_x, train_y, l2=1.0)
    s = CrowdScorer(w, b, VERSION)
    scorer_auc = auc(s.score(test_x, "t"), test_y)
    length_auc = auc(np.array([len(t) for t in test_x], dtype=np.float32), test_y)
    assert abs(length_auc - 0.5) < 0.1
    assert scorer_auc > 0.95 > length_auc + 0.3
