"""Settings read once from the environment into one typed object, passed down explicitly.

Every variable is optional; the defaults are the embedded ones (shipped model, CPU, local dirs).
See docs/SETTINGS.md for the table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from memebot.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    # Development and CI keep the shared data beside the checkout.
    return REPO_ROOT.parent / "shared" / "data" / "imgflip575k"


@dataclass(frozen=True)
class Settings:
    data_dir: Path  # MEMEBOT_DATA_DIR: an ImgFlip575K directory (memes/, templates/)
    cache_dir: Path  # MEMEBOT_CACHE_DIR: cleaned-data cache, downloaded images
    model_dir: Path  # MEMEBOT_MODEL: the artifact `generate` and the engine load
    output_dir: Path  # MEMEBOT_OUTPUT_DIR: where `generate` writes images
    images_dir: Path  # MEMEBOT_IMAGES_DIR: blank template images (<Name>.jpg|png)
    download_images: bool  # MEMEBOT_DOWNLOAD_IMAGES: fetch missing images from their URL once
    engine_host: str  # MEMEBOT_ENGINE_HOST: bind address (loopback unless you mean it)
    engine_port: int  # MEMEBOT_ENGINE_PORT
    engine_token: str | None  # MEMEBOT_ENGINE_TOKEN: require "Authorization: Bearer <token>"
    max_queue: int  # MEMEBOT_MAX_QUEUE: pending requests before 503 + Retry-After
    max_batch_rows: int  # MEMEBOT_MAX_BATCH: caption rows per batched model call
    request_timeout: float  # MEMEBOT_REQUEST_TIMEOUT: seconds per request
    max_width: int  # MEMEBOT_MAX_WIDTH: rendered images are scaled down to this width
    image_format: str  # MEMEBOT_IMAGE_FORMAT: jpeg | png | webp
    access_log: bool = False  # MEMEBOT_ACCESS_LOG: one log line per engine request
    decoder: str = "auto"  # MEMEBOT_DECODER: auto | kernel | numpy (char-gru decoding step)
    decode_threads: int = 0  # MEMEBOT_DECODE_THREADS: cores per decoding step (0 = all)
    # MEMEBOT_DATABASE_URL: the bot's rating store (SQLite file or PostgreSQL)
    database_url: str = "sqlite+aiosqlite:///var/memebot.db"
    # Retraining (docs/RETRAIN.md)
    models_dir: Path = Path("var/models")  # MEMEBOT_MODELS_DIR: where runs write artifacts
    # MEMEBOT_ENGINE_URLS: every engine replica a promotion reloads (default MEMEBOT_ENGINE_URL)
    engine_urls: tuple[str, ...] = ("http://127.0.0.1:8765",)
    queue_url: str = "sqlite:///var/retrain-queue.db"  # MEMEBOT_QUEUE_URL: the job queue
    retrain_epochs: int = 2  # MEMEBOT_RETRAIN_EPOCHS: fine-tune epochs
    retrain_steps: int = 150  # MEMEBOT_RETRAIN_STEPS: fine-tune batches per epoch
    retrain_lr: float = 5e-4  # MEMEBOT_RETRAIN_LR: fine-tune learning rate
    retrain_share: float = 0.25  # MEMEBOT_RETRAIN_SHARE: curated share of fine-tune samples
    retrain_full_minutes: float = 60.0  # MEMEBOT_RETRAIN_FULL_MINUTES: budget of a full run
    gate_val_limit: int = 2000  # MEMEBOT_GATE_VAL_LIMIT: base val captions the gate scores

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home_cache = Path(env.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "memebot"
        data_dir = Path(env.get("MEMEBOT_DATA_DIR") or _default_data_dir())
        return cls(
            data_dir=data_dir,
            cache_dir=Path(env.get("MEMEBOT_CACHE_DIR") or home_cache),
            model_dir=Path(env.get("MEMEBOT_MODEL") or REPO_ROOT / "models" / "default"),
            output_dir=Path(env.get("MEMEBOT_OUTPUT_DIR") or Path.cwd() / "out"),
            images_dir=Path(env.get("MEMEBOT_IMAGES_DIR") or data_dir / "templates" / "img"),
            download_images=_bool(
                env.get("MEMEBOT_DOWNLOAD_IMAGES", "1"), "MEMEBOT_DOWNLOAD_IMAGES"
            ),
            engine_host=env.get("MEMEBOT_ENGINE_HOST", "127.0.0.1"),
            engine_port=_int(env.get("MEMEBOT_ENGINE_PORT", "8765"), "MEMEBOT_ENGINE_PORT"),
            engine_token=env.get("MEMEBOT_ENGINE_TOKEN") or None,
            max_queue=_int(env.get("MEMEBOT_MAX_QUEUE", "256"), "MEMEBOT_MAX_QUEUE"),
            max_batch_rows=_int(env.get("MEMEBOT_MAX_BATCH", "256"), "MEMEBOT_MAX_BATCH"),
            request_timeout=_float(
                env.get("MEMEBOT_REQUEST_TIMEOUT", "10"), "MEMEBOT_REQUEST_TIMEOUT"
            ),
            max_width=_int(env.get("MEMEBOT_MAX_WIDTH", "1200"), "MEMEBOT_MAX_WIDTH"),
            image_format=_choice(
                env.get("MEMEBOT_IMAGE_FORMAT", "jpeg"),
                "MEMEBOT_IMAGE_FORMAT",
                ("jpeg", "png", "webp"),
            ),
            access_log=_bool(env.get("MEMEBOT_ACCESS_LOG", "0"), "MEMEBOT_ACCESS_LOG"),
            decoder=_choice(
                env.get("MEMEBOT_DECODER", "auto"), "MEMEBOT_DECODER", ("auto", "kernel", "numpy")
            ),
            decode_threads=_int(
                env.get("MEMEBOT_DECODE_THREADS", "0"), "MEMEBOT_DECODE_THREADS", minimum=0
            ),
            database_url=_database_url(env),
            models_dir=Path(env.get("MEMEBOT_MODELS_DIR") or Path.cwd() / "var" / "models"),
            engine_urls=_engine_urls(env),
            queue_url=_queue_url(env),
            retrain_epochs=_int(env.get("MEMEBOT_RETRAIN_EPOCHS", "2"), "MEMEBOT_RETRAIN_EPOCHS"),
            retrain_steps=_int(env.get("MEMEBOT_RETRAIN_STEPS", "150"), "MEMEBOT_RETRAIN_STEPS"),
            retrain_lr=_float(env.get("MEMEBOT_RETRAIN_LR", "5e-4"), "MEMEBOT_RETRAIN_LR"),
            retrain_share=_fraction(
                env.get("MEMEBOT_RETRAIN_SHARE", "0.25"), "MEMEBOT_RETRAIN_SHARE"
            ),
            retrain_full_minutes=_float(
                env.get("MEMEBOT_RETRAIN_FULL_MINUTES", "60"), "MEMEBOT_RETRAIN_FULL_MINUTES"
            ),
            gate_val_limit=_int(
                env.get("MEMEBOT_GATE_VAL_LIMIT", "2000"), "MEMEBOT_GATE_VAL_LIMIT"
            ),
        )


def _engine_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("MEMEBOT_ENGINE_URLS", "").strip() or env.get("MEMEBOT_ENGINE_URL", "").strip()
    urls = tuple(u.strip().rstrip("/") for u in raw.split(",") if u.strip())
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise UsageError(f"MEMEBOT_ENGINE_URLS: {u!r} is not an http(s):// URL")
    return urls or ("http://127.0.0.1:8765",)


def _queue_url(env: Mapping[str, str]) -> str:
    raw = env.get("MEMEBOT_QUEUE_URL", "").strip()
    if not raw:
        return f"sqlite:///{Path.cwd() / 'var' / 'retrain-queue.db'}"
    if not raw.startswith(("sqlite:///", "postgresql://", "redis://", "rediss://")):
        raise UsageError(
            f"MEMEBOT_QUEUE_URL={raw.split('://')[0]}://...: use sqlite:///<file>, "
            "postgresql://user@host/db or redis://host:6379/0"
        )
    return raw


def _fraction(raw: str, name: str) -> float:
    v = _float(raw, name)
    if v >= 1:
        raise UsageError(f"{name}={raw!r}: must be below 1")
    return v


def _database_url(env: Mapping[str, str]) -> str:
    raw = env.get("MEMEBOT_DATABASE_URL", "").strip()
    if not raw:
        return f"sqlite+aiosqlite:///{Path.cwd() / 'var' / 'memebot.db'}"
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise UsageError(
            f"MEMEBOT_DATABASE_URL: expected sqlite+aiosqlite:///<file> or "
            f"postgresql+asyncpg://user@host/db, not a {scheme or 'malformed'!r} URL"
        )
    return raw


def _int(raw: str, name: str, minimum: int = 1) -> int:
    try:
        v = int(raw)
    except ValueError as e:
        raise UsageError(f"{name}={raw!r}: expected an integer") from e
    if v < minimum:
        raise UsageError(f"{name}={raw!r}: must be at least {minimum}")
    return v


def _float(raw: str, name: str) -> float:
    try:
        v = float(raw)
    except ValueError as e:
        raise UsageError(f"{name}={raw!r}: expected a number") from e
    if v <= 0:
        raise UsageError(f"{name}={raw!r}: must be positive")
    return v


def _bool(raw: str, name: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"{name}={raw!r}: expected 1 or 0")


def _choice(raw: str, name: str, choices: tuple[str, ...]) -> str:
    if raw.lower() not in choices:
        raise UsageError(f"{name}={raw!r}: choose one of {', '.join(choices)}")
    return raw.lower()
