"""Fixtures only (the helpers they use live in harness/, which tests import by name): a small
ImgFlip575K-layout dataset made on the fly, tiny trained models of each architecture reused by
the slow tests, and store databases. Tests that need the real shared data or services skip with
a reason, unless MEMEBOT_REQUIRE_ALL=1 (set by .ci/run), which turns such a skip into a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from harness.databases import throwaway_db
from harness.factories import make_imgflip_dir, train_tiny
from harness.skips import skip_or_fail
from memebot.settings import Settings


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    path = Settings.from_env().data_dir
    if not (path / "memes").is_dir():
        skip_or_fail(f"real ImgFlip575K data not found at {path} (set MEMEBOT_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_imgflip_dir(tmp_path_factory.mktemp("data") / "imgflip")


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """Another tiny model (other seed, other size) that answers differently from `tiny_model`,
    with its own version name: what a reload swaps in."""
    out = train_tiny(
        tiny_data,
        tmp_path_factory.mktemp("models") / "other",
        seed=7,
        overrides={"hidden": "32", "layers": "1", "char_emb": "8"},
    )
    meta = json.loads((out / "meta.json").read_text())
    meta["version"] = "char-gru-other"
    (out / "meta.json").write_text(json.dumps(meta))
    return out


@pytest.fixture(scope="session")
def tiny_lstm_model(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """An lstm trained like `tiny_model` (same data, sizes and seconds)."""
    return train_tiny(tiny_data, tmp_path_factory.mktemp("models") / "tiny-lstm", arch="lstm")


@pytest.fixture(scope="session")
def tiny_transformer(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """A transformer trained for a few seconds on `tiny_data` (2 blocks of width 32)."""
    return train_tiny(
        tiny_data,
        tmp_path_factory.mktemp("models") / "tiny-transformer",
        arch="transformer",
        learning_rate=3e-3,
        overrides={"d_model": "32", "layers": "2", "heads": "2", "ff": "64", "warmup_steps": "10"},
    )


# The architectures every decoding method and the engine are tested on: fixture of its tiny model.
DECODED_ARCHS = {
    "char-gru": "tiny_model",
    "lstm": "tiny_lstm_model",
    "transformer": "tiny_transformer",
}


@pytest.fixture(params=list(DECODED_ARCHS))
def arch_model(request: pytest.FixtureRequest) -> Path:
    """A tiny trained model of each architecture in DECODED_ARCHS (trained once per test run)."""
    path: Path = request.getfixturevalue(DECODED_ARCHS[request.param])
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """A char-gru trained for a few seconds on `tiny_data` (shared by the slow tests)."""
    return train_tiny(tiny_data, tmp_path_factory.mktemp("models") / "tiny")


# -- databases for the store -----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store migrated to head: a SQLite file, then a PostgreSQL database."""
    with throwaway_db(request.param, tmp_path, migrate=True) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like db_url, never migrated (no tables)."""
    with throwaway_db(request.param, tmp_path, migrate=False) as url:
        yield url
