"""scripts/add_length_stats.py: amends an artifact made before box-length statistics."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memebot.artifact.meta import read_meta, sha256_file
from memebot.artifact.templates import TemplateTable

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "add_length_stats.py"
pytestmark = pytest.mark.slow


def _strip_stats(model: Path) -> None:
    """Make `model` look like an artifact from before 2026-11-28 (valid checksums)."""
    path = model / "templates.json"
    entries = json.loads(path.read_text())
    path.write_text(
        json.dumps([{k: v for k, v in e.items() if k != "box_lengths"} for e in entries])
    )
    meta = json.loads((model / "meta.json").read_text())
    meta["files"]["templates.json"] = sha256_file(path)
    (model / "meta.json").write_text(json.dumps(meta))


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_adds_stats_keeps_weights_and_refuses_other_data(
    tiny_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    model = tmp_path / "old-model"
    shutil.copytree(tiny_model, model)
    _strip_stats(model)
    read_meta(model)  # a valid old artifact
    assert TemplateTable.load(model / "templates.json").length_quantiles("two-buttons", 2) is None
    weights = sha256_file(model / "model.keras")

    other = tmp_path / "other-data"
    shutil.copytree(tiny_data, other)
    next((other / "memes").glob("*.json")).write_text("[]")
    refused = _run(model, "--data", other, "--cache-dir", tmp_path / "cache")
    assert refused.returncode != 0 and "not the data" in refused.stderr
    assert TemplateTable.load(model / "templates.json").length_quantiles("two-buttons", 2) is None

    done = _run(model, "--data", tiny_data, "--cache-dir", tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    meta = read_meta(model)  # checksums verified
    assert meta.extra and "amended" in meta.extra
    assert sha256_file(model / "model.keras") == weights
    table = TemplateTable.load(model / "templates.json")
    q = table.length_quantiles("two-buttons", 2)
    assert q is not None and len(q) == 2 and all(len(b) == 11 for b in q)
    assert not list(tmp_path.glob(".old-model*"))  # no temp or backup directory left behind
