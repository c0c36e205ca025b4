"""Checks on the real shared data and the shipped model (skip without the data, fail in CI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memebot.settings import REPO_ROOT, Settings
from training.prepare import Prepared, prepare

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

SHIPPED = REPO_ROOT / "models" / "default"
# The ≤ 1.18 nats/char target for the shipped model, on the project's val split (the first
# target, set on 2026-11-22, was 1.25).
SHIPPED_MAX_VAL_NATS = 1.18


@pytest.fixture(scope="module")
def real(real_data_dir: Path) -> Prepared:
    return prepare(real_data_dir, cache_dir=Settings.from_env().cache_dir)


def test_cleaning_on_real_data(real: Prepared) -> None:
    r = real.report
    assert r.total > 350_000
    assert 0.6 < r.kept / r.total < 0.9
    assert all(r.dropped[k] > 0 for k in r.dropped)  # every rule fires on real captions
    for c in real.splits["train"][:5000]:
        assert c.text == c.text.lower() and 10 <= len(c.text) <= 82
        assert all(32 <= ord(ch) < 127 for ch in c.text)


def test_shipped_model_is_small_and_documented() -> None:
    size = sum(p.stat().st_size for p in SHIPPED.iterdir())
    assert size <= 10 * 1024 * 1024
    meta = json.loads((SHIPPED / "meta.json").read_text())
    assert meta["command"].startswith("memebot train")
    assert meta["metrics"]["val_nats_per_char"] <= SHIPPED_MAX_VAL_NATS


def test_shipped_model_val_nats_on_projects_split(real: Prepared) -> None:
    from training.evaluate import evaluate
    from training.trained import load_trained as load_model

    model = load_model(SHIPPED)
    assert model.meta is not None and model.meta.data_fingerprint == real.fingerprint
    res = evaluate(model, real.splits["val"], batch_size=512)
    assert res.nats_per_char <= SHIPPED_MAX_VAL_NATS, res.nats_per_char
    assert (
        abs(res.nats_per_char - model.meta.metrics["val_nats_per_char"]) < 1e-3
    )  # recorded = measured


def test_shipped_model_is_not_a_memorizer(real: Prepared) -> None:
    from engine.decoding.batch import sample_captions
    from engine.decoding.loader import load_model

    model = load_model(SHIPPED)
    seen = {c.text for c in real.splits["train"]}
    slugs = [e.slug for e in model.templates.entries]
    samples = []
    for seed in range(3):
        samples += sample_captions(model, slugs, seed=seed)  # threshold decoding, the default
    novel = sum(s.text not in seen for s in samples)
    assert novel / len(samples) >= 0.9, f"{novel}/{len(samples)} novel"


def test_generate_for_template_without_captions() -> None:
    from engine.decoding.batch import sample_captions
    from engine.decoding.loader import load_model

    model = load_model(SHIPPED)
    entry = model.templates.lookup("distracted-boyfriend")
    assert entry.train_captions == 0 and entry.box_count == 3
    (s,) = sample_captions(model, [entry.slug], seed=0)
    assert len(s.boxes) == 3 and all(b.strip() for b in s.boxes)
