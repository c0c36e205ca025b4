"""Shared fixtures: a small ImgFlip575K-layout dataset made on the fly, and one tiny trained
model reused by the slow tests. Tests that need the real shared data or services skip with a
reason, unless MEMEBOT_REQUIRE_ALL=1 (set by .ci/run), which turns such a skip into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import asyncpg
from sqlalchemy.exc import SQLAlchemyError

from bot.store import upgrade
from bot.store.db import redacted
from bot.store.scratch import DEFAULT_ADMIN_URL, create_database, drop_database
from memebot.settings import Settings

REQUIRE_ALL = os.environ.get("MEMEBOT_REQUIRE_ALL") == "1"


def skip_or_fail(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(f"MEMEBOT_REQUIRE_ALL=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    path = Settings.from_env().data_dir
    if not (path / "memes").is_dir():
        skip_or_fail(f"real ImgFlip575K data not found at {path} (set MEMEBOT_DATA_DIR)")
    return path


SUBJECTS = [
    "my dog",
    "the teacher",
    "my mom",
    "a cat",
    "my boss",
    "the internet",
    "my friend",
    "dad",
]
VERBS = ["eats", "forgets", "finds", "loves", "hates", "steals", "breaks", "fixes"]
OBJECTS = [
    "the homework",
    "my pizza",
    "the wifi",
    "all the memes",
    "my phone",
    "the car",
    "a sandwich",
]
ENDINGS = [
    "every single day",
    "and nobody cares",
    "again",
    "on a monday",
    "like a boss",
    "at school",
]


def _caption(rng: random.Random, n_boxes: int) -> list[str]:
    boxes = [f"when {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"]
    boxes += [f"{rng.choice(SUBJECTS)} {rng.choice(ENDINGS)}" for _ in range(n_boxes - 1)]
    return boxes


def make_imgflip_dir(root: Path, *, per_template: int = 150, seed: int = 0) -> Path:
    """Three templates with captions (1, 2 and 2 boxes) and one, distracted-boyfriend, with none."""
    rng = random.Random(seed)
    (root / "memes").mkdir(parents=True)
    (root / "templates").mkdir()
    spec = {"Success-Kid": (61544, 1), "Two-Buttons": (87743020, 2), "Y-U-No": (61527, 2)}
    for name, (_tid, boxes) in spec.items():
        memes = [
            {
                "url": "",
                "post": "",
                "metadata": {"views": "1,024", "img-votes": 3},
                "boxes": [b.upper() for b in _caption(rng, boxes)],
            }
            for _ in range(per_template)
        ]
        (root / "memes" / f"{name}.json").write_text(json.dumps(memes))
    for name, tid in [*((n, t) for n, (t, _) in spec.items()), ("Distracted-Boyfriend", 112126428)]:
        (root / "templates" / f"{name}.json").write_text(
            json.dumps(
                {
                    "title": f"{name.replace('-', ' ')} Meme Template",
                    "template_id": str(tid),
                    "alternative_names": "alias one, alias two"
                    if name != "Distracted-Boyfriend"
                    else "distracted bf",
                }
            )
        )
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_imgflip_dir(tmp_path_factory.mktemp("data") / "imgflip")


def train_tiny(data: Path, out: Path, **options: Any) -> Path:
    """A small char-gru trained for seconds on `data`; `options` override TrainOptions fields
    (`arch` and `overrides` for another architecture)."""
    from training.train import TrainOptions, train

    settings: dict[str, Any] = {
        "epochs": 6,
        "batch_size": 32,
        "learning_rate": 1e-2,
        "overrides": {"hidden": "48", "layers": "1", "char_emb": "16"},
        "verbose": 0,
        "patience": 10,
        "precision": "float32",  # the same arithmetic on every machine (bfloat16: own test)
    }
    return train(TrainOptions(data=data, out=out, **(settings | options)), echo=lambda _s: None)


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
    """A tiny trained model of each architecture in DECODED_ARCHS (trained once a session)."""
    path: Path = request.getfixturevalue(DECODED_ARCHS[request.param])
    return path


class StepGate:
    """Holds a real model's decoding steps until `opened` is set, so requests stay in flight
    for as long as a test needs, with no timing involved. `waiting` is set once a step waits."""

    def __init__(self, model: Any):
        self.opened = threading.Event()
        self.waiting = threading.Event()
        inner = model.step

        def step(*args: Any, **kwargs: Any) -> Any:
            self.waiting.set()
            if not self.opened.wait(timeout=120):
                raise RuntimeError("StepGate: the test never opened the gate")
            return inner(*args, **kwargs)

        model.step = step


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """A char-gru trained for a few seconds on `tiny_data` (shared by the slow tests)."""
    return train_tiny(tiny_data, tmp_path_factory.mktemp("models") / "tiny")


def captions_alone(model: Any, reqs: list[Any]) -> list[list[list[str]]]:
    """Each request decoded by itself: the boxes of its captions (the reference for batching)."""
    from engine.decoding.batch import run_jobs
    from engine.decoding.jobs import make_job

    out = []
    for r in reqs:
        job = make_job(model, r)
        run_jobs(model, [job])
        out.append([c.boxes for c in job.captions()])
    return out


# -- databases for the bot's rating store ---------------------------------------------------------

POSTGRES_ADMIN_URL = os.environ.get("MEMEBOT_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
_postgres_down: list[str] = []  # the reason, once PostgreSQL was found unreachable


@contextlib.contextmanager
def throwaway_postgres(*, migrate: bool = True) -> Iterator[str]:
    """A fresh database `memebot_test_<hex>` on the test PostgreSQL (migrated to head unless
    `migrate=False`); dropped afterwards. Skips (fails in CI) when PostgreSQL is unreachable."""
    if _postgres_down:
        skip_or_fail(_postgres_down[0])
    try:
        url = asyncio.run(create_database(POSTGRES_ADMIN_URL))
    except (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        where = redacted(POSTGRES_ADMIN_URL)
        _postgres_down.append(f"PostgreSQL not usable at {where} (MEMEBOT_TEST_POSTGRES_URL): {e}")
        skip_or_fail(_postgres_down[0])
    try:
        if migrate:
            asyncio.run(upgrade(url))
        yield url
    finally:
        asyncio.run(drop_database(POSTGRES_ADMIN_URL, url))


@contextlib.contextmanager
def small_disk(where: Path, size_bytes: int) -> Iterator[Path]:
    """A real filesystem of `size_bytes` (tmpfs) mounted at `where`: writes past it fail with
    ENOSPC, as on a full disk. Needs root (CI runs as root); skips, or fails in CI, otherwise."""
    where.mkdir(parents=True, exist_ok=True)
    size_kb = max(size_bytes // 1024, 64)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        skip_or_fail(f"cannot mount a {size_kb} KB tmpfs to fill (needs root): {mount.stderr}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


REDIS_URL = os.environ.get("MEMEBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@contextlib.contextmanager
def throwaway_redis_queue() -> Iterator[tuple[str, str]]:
    """(Redis URL, a fresh huey queue name) on the test Redis; the queue's keys are deleted
    afterwards. Skips (fails in CI) when Redis is unreachable or its client is not installed."""
    try:
        import redis
    except ImportError:
        skip_or_fail("the redis client is not installed (pip install 'memebot[redis]')")
    name = f"memebot_test_{uuid.uuid4().hex[:12]}"
    conn = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        conn.ping()
    except (OSError, redis.RedisError) as e:
        skip_or_fail(f"Redis not usable at {REDIS_URL} (MEMEBOT_TEST_REDIS_URL): {e}")
    try:
        yield REDIS_URL, name
    finally:
        for key in conn.scan_iter(match=f"huey.*{name}*"):
            conn.delete(key)
        conn.close()


@contextlib.contextmanager
def throwaway_sqlite(tmp_path: Path, *, migrate: bool = True) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'memebot.db'}"
    if migrate:
        asyncio.run(upgrade(url))
    yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store migrated to head: a SQLite file, then a PostgreSQL database."""
    with _throwaway(request.param, tmp_path, migrate=True) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like db_url, never migrated (no tables)."""
    with _throwaway(request.param, tmp_path, migrate=False) as url:
        yield url


def _throwaway(
    kind: str, tmp_path: Path, *, migrate: bool
) -> contextlib.AbstractContextManager[str]:
    if kind == "sqlite":
        return throwaway_sqlite(tmp_path, migrate=migrate)
    return throwaway_postgres(migrate=migrate)
