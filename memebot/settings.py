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
    # The Discord bot (docs/BOT.md)
    discord_token: str | None = None  # DISCORD_TOKEN: the bot's token (never logged)
    engine_url: str = "http://127.0.0.1:8765"  # MEMEBOT_ENGINE_URL: where the bot finds the engine
    discord_guilds: tuple[int, ...] = ()  # MEMEBOT_DISCORD_GUILDS: sync commands here (else global)
    shards: int | None = None  # MEMEBOT_SHARDS: shard count (unset: one process, no sharding)
    vote_up: str = "👍"  # MEMEBOT_VOTE_UP: the emoji counted as an upvote
    vote_down: str = "👎"  # MEMEBOT_VOTE_DOWN
    admin_ids: tuple[int, ...] = ()  # MEMEBOT_ADMIN_IDS: users/roles allowed admin commands
    meme_cooldown: float = 5.0  # MEMEBOT_MEME_COOLDOWN: seconds between one user's /meme
    reconcile_hours: float = 48.0  # MEMEBOT_RECONCILE_HOURS: votes re-read at start for these
    max_upload_bytes: int = 8 * 1024 * 1024  # MEMEBOT_MAX_UPLOAD: /meme image attachment limit
    # MEMEBOT_DATABASE_URL: the bot's rating store (SQLite file or PostgreSQL)
    database_url: str = "sqlite+aiosqlite:///var/memebot.db"

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
            discord_token=env.get("DISCORD_TOKEN") or None,
            engine_url=env.get("MEMEBOT_ENGINE_URL") or "http://127.0.0.1:8765",
            discord_guilds=_ids(env.get("MEMEBOT_DISCORD_GUILDS", ""), "MEMEBOT_DISCORD_GUILDS"),
            shards=_int(env["MEMEBOT_SHARDS"], "MEMEBOT_SHARDS")
            if env.get("MEMEBOT_SHARDS")
            else None,
            vote_up=env.get("MEMEBOT_VOTE_UP") or "👍",
            vote_down=env.get("MEMEBOT_VOTE_DOWN") or "👎",
            admin_ids=_ids(env.get("MEMEBOT_ADMIN_IDS", ""), "MEMEBOT_ADMIN_IDS"),
            meme_cooldown=_float(
                env.get("MEMEBOT_MEME_COOLDOWN", "5"), "MEMEBOT_MEME_COOLDOWN", minimum=0.0
            ),
            reconcile_hours=_float(
                env.get("MEMEBOT_RECONCILE_HOURS", "48"), "MEMEBOT_RECONCILE_HOURS", minimum=0.0
            ),
            max_upload_bytes=_int(
                env.get("MEMEBOT_MAX_UPLOAD", str(8 * 1024 * 1024)), "MEMEBOT_MAX_UPLOAD"
            ),
            database_url=_database_url(env),
        )


def _database_url(env: Mapping[str, str]) -> str:
    raw = env.get("MEMEBOT_DATABASE_URL", "").strip()
    if not raw:
        state_dir = Path(env.get("MEMEBOT_STATE_DIR") or Path.cwd() / "var")
        return f"sqlite+aiosqlite:///{state_dir.resolve() / 'memebot.db'}"
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


def _float(raw: str, name: str, minimum: float | None = None) -> float:
    try:
        v = float(raw)
    except ValueError as e:
        raise UsageError(f"{name}={raw!r}: expected a number") from e
    if minimum is None and v <= 0:
        raise UsageError(f"{name}={raw!r}: must be positive")
    if minimum is not None and v < minimum:
        raise UsageError(f"{name}={raw!r}: must be at least {minimum:g}")
    return v


def _ids(raw: str, name: str) -> tuple[int, ...]:
    """Comma- or space-separated Discord ids (snowflakes)."""
    parts = [p for p in raw.replace(",", " ").split() if p]
    if not all(p.isdigit() for p in parts):
        raise UsageError(f"{name}={raw!r}: expected comma-separated numeric Discord ids")
    return tuple(int(p) for p in parts)


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
