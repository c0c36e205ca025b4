"""The artifact format (memebot/artifact): meta.json's schema, the vocabulary's special
characters, weights.npz against the config, and the loader's test decode. Every broken artifact
is an ArtifactError naming the file (and the field), never a crash later on."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.decoding.loader import load_model
from memebot.artifact.configs import (
    CharGRUConfig,
    ConfigError,
    LSTMConfig,
    SeedCNNConfig,
    TransformerConfig,
)
from memebot.artifact.meta import read_meta
from memebot.artifact.weights import load_weights, save_weights
from memebot.errors import ArtifactError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "default"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edit_meta(art: Path, change: Callable[[dict[str, Any]], None]) -> None:
    meta = json.loads((art / "meta.json").read_text())
    change(meta)
    (art / "meta.json").write_text(json.dumps(meta))


def _rehash(art: Path, name: str) -> None:
    """Redo a file's checksum in meta.json, as someone hiding a corruption would."""
    _edit_meta(art, lambda m: m["files"].__setitem__(name, _sha(art / name)))


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    art = tmp_path / "model"
    shutil.copytree(SHIPPED, art)
    return art


def test_shipped_model_loads_without_keras_file_and_decodes() -> None:
    m = load_model(SHIPPED, decoder="numpy")
    assert m.arch == "char-gru" and m.step_backend == "numpy"
    assert "model.keras" not in m.meta.files  # type: ignore[union-attr]


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda m: m.__setitem__(field, value)


def _set_config(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda m: m["config"].__setitem__(field, value)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_set("files", []), "field 'files' must be an object"),
        (_set("files", {}), "files must list vocab.json"),
        (_set("version", 3), "field 'version' must be a string"),
        (_set("version", "  "), "field 'version' is empty"),
        (_set("arch", "markov"), "unknown architecture 'markov'"),
        (_set("format_version", 2), "format_version 2"),
        (_set("surprise", 1), r"unknown fields \['surprise'\]"),
        (lambda m: m.pop("created"), "field 'created' is missing"),
        (_set_config("hidden", "abc"), "config field hidden: expected an integer, got 'abc'"),
        (_set_config("hidden", -3), "config field hidden: must be >= 1, got -3"),
        (_set_config("layers", True), "config field layers: expected an integer"),
        (_set_config("dropout", 1.5), r"config field dropout: must be < 1\.0"),
        (_set_config("width", 3), "config has unknown fields"),
        (lambda m: m["files"].__setitem__("../etc", "0" * 64), "'../etc' is not a file name"),
        (lambda m: m["files"].__setitem__("vocab.json", "abc"), "not a sha256 hex digest"),
    ],
)
def test_meta_schema_refuses_with_the_field(
    shipped_copy: Path, change: Callable[[dict[str, Any]], None], match: str
) -> None:
    _edit_meta(shipped_copy, change)
    with pytest.raises(ArtifactError, match=match) as e:
        load_model(shipped_copy)
    assert "meta.json" in str(e.value)


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (CharGRUConfig, "hidden", "abc"),
        (CharGRUConfig, "hidden", 0),
        (CharGRUConfig, "template_dropout", float("nan")),
        (SeedCNNConfig, "filters", 2.5),
        (SeedCNNConfig, "dropout", -0.1),
        (LSTMConfig, "layers", 0),
        (LSTMConfig, "dropout", 1.0),
        (TransformerConfig, "heads", 3),  # must divide d_model 256
        (TransformerConfig, "warmup_steps", -1),
    ],
)
def test_configs_check_their_values(cls: Any, field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"config field {field}"):
        cls(**{field: value})
    assert cls().to_dict()[field] != value  # the defaults are valid


def test_vocabulary_without_the_box_end_is_refused(shipped_copy: Path) -> None:
    vocab = json.loads((shipped_copy / "vocab.json").read_text())
    vocab["chars"] = [c for c in vocab["chars"] if c != "|"]
    (shipped_copy / "vocab.json").write_text(json.dumps(vocab))
    _rehash(shipped_copy, "vocab.json")
    with pytest.raises(ArtifactError, match=r"vocab.json: vocabulary lacks .*\|"):
        load_model(shipped_copy)


def test_truncated_weights_with_their_checksum_redone(shipped_copy: Path) -> None:
    w = shipped_copy / "weights.npz"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    _rehash(shipped_copy, "weights.npz")
    with pytest.raises(ArtifactError, match=r"weights\.npz: corrupt weights file"):
        load_model(shipped_copy)


@pytest.mark.parametrize("damage", ["shape", "missing", "extra", "nan"])
def test_weights_that_do_not_fit_the_config(shipped_copy: Path, damage: str) -> None:
    path = shipped_copy / "weights.npz"
    weights = load_weights(path)
    if damage == "shape":
        weights["gru_1/gru_cell/kernel"] = weights["gru_1/gru_cell/kernel"][:, :-3]
        match = "weights do not fit the config: 'gru_1/gru_cell/kernel' has shape"
    elif damage == "missing":
        del weights["logits/bias"]
        match = "expected one 'logits/bias', found 0"
    elif damage == "extra":
        weights["gru_2/gru_cell/kernel"] = np.zeros((3, 3), np.float32)
        match = "12 arrays, the config makes 11"
    else:
        weights["logits/bias"] = np.full_like(weights["logits/bias"], np.nan)
        match = "'logits/bias' is not finite float32"
    save_weights(path, weights)
    _rehash(shipped_copy, "weights.npz")
    with pytest.raises(ArtifactError, match=match):
        load_model(shipped_copy)


def test_an_artifact_without_weights_npz_names_the_converter(shipped_copy: Path) -> None:
    (shipped_copy / "weights.npz").rename(shipped_copy / "model.keras")  # any file will do
    _edit_meta(shipped_copy, lambda m: m["files"].pop("weights.npz"))
    _rehash(shipped_copy, "model.keras")
    with pytest.raises(ArtifactError, match=r"scripts/convert_artifact\.py"):
        load_model(shipped_copy)


def test_read_meta_refuses_a_directory_that_is_no_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"meta\.json: missing"):
        read_meta(tmp_path)


def test_convert_script_refuses_a_directory_that_is_no_artifact(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "convert_artifact.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "is not a complete model artifact" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # untouched
