"""scripts/convert_artifact.py: adds weights.npz to an artifact made before it existed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.decoding.batch import sample_captions
from engine.decoding.loader import load_model
from memebot.artifact.meta import read_meta
from memebot.artifact.weights import load_weights

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "convert_artifact.py"
pytestmark = pytest.mark.slow


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_converts_an_old_artifact_then_drops_its_keras_file(
    tiny_model: Path, tmp_path: Path
) -> None:
    from training.trained import load_trained

    old = tmp_path / "old"
    shutil.copytree(tiny_model, old)
    (old / "weights.npz").unlink()  # as written before weights.npz existed
    meta = json.loads((old / "meta.json").read_text())
    del meta["files"]["weights.npz"]
    (old / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match=r"convert_artifact\.py"):
        load_model(old)

    done = _run(old)
    assert done.returncode == 0, done.stderr
    assert "weights.npz" in read_meta(old).files and "model.keras" in read_meta(old).files
    keras_weights = {v.path: np.asarray(v.numpy()) for v in load_trained(old).keras_model.weights}
    npz = load_weights(old / "weights.npz")
    assert npz.keys() == keras_weights.keys()
    assert all(np.array_equal(npz[k], keras_weights[k]) for k in npz)
    want = sample_captions(load_model(tiny_model), ["two-buttons", "y-u-no"], seed=3)
    assert sample_captions(load_model(old), ["two-buttons", "y-u-no"], seed=3) == want
    assert _run(old).stdout.strip().endswith("nothing to do")

    dropped = _run(old, "--drop-keras")
    assert dropped.returncode == 0, dropped.stderr
    assert not (old / "model.keras").exists() and "model.keras" not in read_meta(old).files
    rebuilt = load_trained(old).keras_model  # training reads weights.npz instead
    for v in rebuilt.weights:
        assert np.array_equal(np.asarray(v.numpy()), keras_weights[v.path]), v.path
    assert not list(tmp_path.glob(".old*"))  # no temp or backup directory left behind
