"""Settings read once from the environment (and a `.env` file) into one typed object, passed
down explicitly.

Every variable is optional; the defaults are the embedded ones (shipped model, CPU, local dirs).
docs/SETTINGS.md has the table. A malformed value is one `UsageError` line naming the variable.
Tests build their own with `Settings.from_env({...})` (that mapping only, no `.env`) and copy
with `settings.model_copy(update={...})`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from memebot.choices import Decoder, ImageFormat
from memebot.errors import UsageError
from memebot.eventloop import EventLoopChoice
from memebot.logs import LogFormat, LogLevel

REPO_ROOT = Path(__file__).resolve().parent.parent
# A custom emoji as discord.PartialEmoji.from_str reads one: <:name:id>, <a:name:id>, name:id.
CUSTOM_EMOJI = re.compile(r"<?(?:a?:)?[A-Za-z0-9_]+:[0-9]{13,20}>?")
MiB = 1024 * 1024
# Set while `from_env(mapping)` builds: read that mapping only, not the process environment.
_ONLY_GIVEN: ContextVar[bool] = ContextVar("memebot_settings_only_given", default=False)
UNSHOWN = (  # may hold secrets
    "DISCORD_TOKEN",
    "MEMEBOT_ENGINE_TOKEN",
    "MEMEBOT_DATABASE_URL",
    "MEMEBOT_QUEUE_URL",
)


def _default_data_dir() -> Path:
    # Development and CI keep the shared data beside the checkout.
    return REPO_ROOT.parent / "shared" / "data" / "imgflip575k"


def _lower(v: object) -> object:
    return v.lower() if isinstance(v, str) else v


def _ids(v: object) -> object:
    """ "123, 456" -> (123, 456); blank -> ()."""
    if isinstance(v, str):
        return tuple(p.strip() for p in v.split(",") if p.strip())
    return v


Lower = BeforeValidator(_lower)
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # inf/nan: no timeout


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_ignore_empty=True,  # VAR= means the default, as before
        case_sensitive=True,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # -- data, models, files
    data_dir: Path = Field(default_factory=_default_data_dir, alias="MEMEBOT_DATA_DIR")
    xdg_cache_home: Path | None = Field(None, alias="XDG_CACHE_HOME", exclude=True, repr=False)
    cache_dir: Path = Field(Path(), alias="MEMEBOT_CACHE_DIR")  # default: XDG cache / memebot
    model_dir: Path = Field(REPO_ROOT / "models" / "default", alias="MEMEBOT_MODEL")
    output_dir: Path = Field(default_factory=lambda: Path.cwd() / "out", alias="MEMEBOT_OUTPUT_DIR")
    images_dir: Path = Field(Path(), alias="MEMEBOT_IMAGES_DIR")  # default: data/templates/img
    download_images: bool = Field(True, alias="MEMEBOT_DOWNLOAD_IMAGES")
    # -- engine
    engine_host: str = Field("127.0.0.1", alias="MEMEBOT_ENGINE_HOST")
    engine_port: int = Field(8765, ge=1, le=65535, alias="MEMEBOT_ENGINE_PORT")
    engine_token: SecretStr | None = Field(None, alias="MEMEBOT_ENGINE_TOKEN")
    max_queue: int = Field(256, ge=1, alias="MEMEBOT_MAX_QUEUE")
    max_batch_rows: int = Field(256, ge=1, alias="MEMEBOT_MAX_BATCH")
    request_timeout: PositiveSeconds = Field(10.0, alias="MEMEBOT_REQUEST_TIMEOUT")
    body_timeout: PositiveSeconds = Field(5.0, alias="MEMEBOT_BODY_TIMEOUT")
    max_upload_bytes: int = Field(8 * MiB, ge=1024, alias="MEMEBOT_MAX_UPLOAD_BYTES")
    max_width: int = Field(1200, ge=1, alias="MEMEBOT_MAX_WIDTH")
    image_format: Annotated[ImageFormat, Lower] = Field("jpeg", alias="MEMEBOT_IMAGE_FORMAT")
    access_log: bool = Field(False, alias="MEMEBOT_ACCESS_LOG")
    decoder: Annotated[Decoder, Lower] = Field("auto", alias="MEMEBOT_DECODER")
    decode_threads: int = Field(0, ge=0, alias="MEMEBOT_DECODE_THREADS")
    # best-of-N: the crowd's taste (MODEL/crowd.npz) beside well-formedness; 0 leaves it out
    crowd_weight: float = Field(0.3, ge=0, le=100, alias="MEMEBOT_CROWD_WEIGHT")
    event_loop: Annotated[EventLoopChoice, Lower] = Field("auto", alias="MEMEBOT_EVENT_LOOP")
    # Servers whose taste the engine keeps loaded (a few KB each; engine/tastes.py).
    taste_cache: int = Field(1024, ge=1, alias="MEMEBOT_TASTE_CACHE")
    # How hard a server's taste tilts its captions' sampling, in units of the taste's logit
    # (engine/decoding/tilt.py); 0: the taste only picks among candidates. 100: among the
    # characters the model finds plausible, the taste's favourites win (docs/ENGINE.md).
    taste_tilt: float = Field(100.0, ge=0, le=100, alias="MEMEBOT_TASTE_TILT")
    # -- every process
    log_level: Annotated[LogLevel, Lower] = Field("info", alias="MEMEBOT_LOG_LEVEL")
    log_format: Annotated[LogFormat, Lower] = Field("text", alias="MEMEBOT_LOG_FORMAT")
    # -- Discord bot
    discord_token: SecretStr | None = Field(None, alias="DISCORD_TOKEN")
    engine_url: str = Field("http://127.0.0.1:8765", alias="MEMEBOT_ENGINE_URL")
    discord_guilds: Annotated[tuple[int, ...], NoDecode, BeforeValidator(_ids)] = Field(
        (), alias="MEMEBOT_DISCORD_GUILDS"
    )
    shards: int | None = Field(None, ge=1, alias="MEMEBOT_SHARDS")
    database_url: str = Field(
        default_factory=lambda: f"sqlite+aiosqlite:///{Path.cwd() / 'var' / 'memebot.db'}",
        alias="MEMEBOT_DATABASE_URL",
    )
    vote_up: str = Field("👍", min_length=1, alias="MEMEBOT_VOTE_UP")
    vote_down: str = Field("👎", min_length=1, alias="MEMEBOT_VOTE_DOWN")
    # Users or roles allowed the admin commands besides the guild's administrators.
    admin_ids: Annotated[tuple[int, ...], NoDecode, BeforeValidator(_ids)] = Field(
        (), alias="MEMEBOT_ADMIN_IDS"
    )
    # Users who own the bot besides the Discord application's owner or team: they alone may
    # retrain or roll back the shared base model from Discord (docs/RETRAIN.md).
    owner_ids: Annotated[tuple[int, ...], NoDecode, BeforeValidator(_ids)] = Field(
        (), alias="MEMEBOT_OWNER_IDS"
    )
    meme_cooldown: float = Field(5.0, ge=0, allow_inf_nan=False, alias="MEMEBOT_MEME_COOLDOWN")
    reconcile_hours: float = Field(48.0, ge=0, allow_inf_nan=False, alias="MEMEBOT_RECONCILE_HOURS")
    # Days a server's tastes, memes and votes are kept after the bot was removed from it (it may
    # be added back); then the bot's hourly sweep deletes them (retrain/guilds.py).
    guild_retention_days: float = Field(
        30.0, ge=0, allow_inf_nan=False, alias="MEMEBOT_GUILD_RETENTION_DAYS"
    )
    # -- retraining (docs/RETRAIN.md)
    models_dir: Path = Field(
        default_factory=lambda: Path.cwd() / "var" / "models", alias="MEMEBOT_MODELS_DIR"
    )
    # Every engine replica a promotion reloads; empty: (MEMEBOT_ENGINE_URL,)
    replica_urls: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_ids)] = Field(
        (), alias="MEMEBOT_ENGINE_URLS"
    )
    queue_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'var' / 'retrain-queue.db'}",
        alias="MEMEBOT_QUEUE_URL",
    )
    # Finetune: one short pass at a low learning rate, half of it curated rows (measured in
    # docs/BENCHMARKS.md, feedback loop): longer or hotter runs pull the model back toward
    # the base data and add noise, which makes held-out upvoted captions less likely.
    retrain_epochs: int = Field(1, ge=1, alias="MEMEBOT_RETRAIN_EPOCHS")
    retrain_steps: int = Field(40, ge=1, alias="MEMEBOT_RETRAIN_STEPS")
    retrain_lr: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        1e-4, alias="MEMEBOT_RETRAIN_LR"
    )
    # Upper bound on the upvoted rows' share of a fine-tune's rows.
    retrain_share: Annotated[float, Field(gt=0, lt=1)] = Field(0.5, alias="MEMEBOT_RETRAIN_SHARE")
    # Finetune: expected times one curated caption (of the top weight) is seen; many more and
    # a few dozen upvoted captions are memorised instead of generalised from.
    retrain_views: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        48.0, alias="MEMEBOT_RETRAIN_VIEWS"
    )
    # Weight of the unlikelihood term on downvoted captions (0: they are not trained on).
    retrain_unlikelihood: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        0.1, alias="MEMEBOT_RETRAIN_UNLIKELIHOOD"
    )
    # Seconds between two taste retrains of one server: a taste fit is cheap, but not free.
    taste_cooldown: float = Field(600.0, ge=0, allow_inf_nan=False, alias="MEMEBOT_TASTE_COOLDOWN")
    retrain_full_minutes: PositiveSeconds = Field(60.0, alias="MEMEBOT_RETRAIN_FULL_MINUTES")
    gate_val_limit: int = Field(2000, ge=1, alias="MEMEBOT_GATE_VAL_LIMIT")

    @field_validator("vote_up", "vote_down")
    @classmethod
    def _emoji(cls, v: str) -> str:
        v = v.strip()
        if CUSTOM_EMOJI.fullmatch(v):
            return v
        if ":" in v or "<" in v or v.isascii():
            # discord.py would read these as a Unicode emoji's name: no reaction ever matches.
            raise ValueError(
                "expected a Unicode emoji (👍) or a custom one as <:name:id> "
                "(name: letters, digits, _; id: the 13-20 digits Discord shows)"
            )
        return v

    @model_validator(mode="after")
    def _two_vote_emoji(self) -> Settings:
        if self.vote_up == self.vote_down:
            raise ValueError(f"MEMEBOT_VOTE_UP and MEMEBOT_VOTE_DOWN are both {self.vote_up}")
        return self

    @field_validator("engine_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return v.rstrip("/")

    @field_validator("replica_urls")
    @classmethod
    def _http_urls(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for u in v:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"{u!r} is not an http:// or https:// URL")
        return tuple(u.rstrip("/") for u in v)

    @field_validator("queue_url")
    @classmethod
    def _queue_scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite:///", "postgresql://", "redis://", "rediss://")):
            raise ValueError(
                "expected sqlite:///<file>, postgresql://user@host/db or redis://host:6379/0"
            )
        return v

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, v: str) -> str:
        v = v.strip()
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                "expected sqlite+aiosqlite:///<file> or postgresql+asyncpg://user@host/db, "
                f"not a {scheme or 'malformed'!r} URL"
            )
        return v

    @model_validator(mode="after")
    def _derived_defaults(self) -> Settings:
        # Defaults that depend on other variables (frozen model: set once, here).
        if self.cache_dir == Path():
            home_cache = self.xdg_cache_home or Path.home() / ".cache"
            object.__setattr__(self, "cache_dir", home_cache / "memebot")
        if self.images_dir == Path():
            object.__setattr__(self, "images_dir", self.data_dir / "templates" / "img")
        return self

    @property
    def replicas(self) -> tuple[str, ...]:
        """Every engine a promotion or rollback reloads: MEMEBOT_ENGINE_URLS, else the one
        MEMEBOT_ENGINE_URL (a property, so `model_copy(update=...)` of either is followed)."""
        return self.replica_urls or (self.engine_url,)

    @property
    def engine_secret(self) -> str | None:
        """MEMEBOT_ENGINE_TOKEN as text: what the engine expects and its clients send."""
        return self.engine_token.get_secret_value() if self.engine_token else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _ONLY_GIVEN.get():
            return (init_settings,)
        return (init_settings, env_settings, dotenv_settings, file_secret_settings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The process environment and `.env` (None), or exactly `env` and nothing else
        (tests: a variable set in the calling process must not leak in)."""
        token = _ONLY_GIVEN.set(env is not None)
        try:
            if env is None:
                return cls()
            given: dict[str, Any] = {k: v for k, v in env.items() if v != ""}
            return cls(**given)
        except ValidationError as e:
            raise UsageError(_one_line(e, os.environ if env is None else env)) from None
        finally:
            _ONLY_GIVEN.reset(token)


def _one_line(e: ValidationError, env: Mapping[str, str]) -> str:
    err = e.errors(include_url=False)[0]
    name = str(err["loc"][0]) if err["loc"] else "settings"
    raw = env.get(name, err.get("input"))
    kind, ctx = err["type"], err.get("ctx") or {}
    problem = {
        "int_parsing": "expected an integer",
        "float_parsing": "expected a number",
        "bool_parsing": "expected 1 or 0",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "greater_than": "must be positive" if ctx.get("gt") == 0 else f"must be > {ctx.get('gt')}",
        "literal_error": f"choose one of {str(ctx.get('expected', '')).replace(chr(39), '')}",
        "finite_number": "expected a finite number",
    }.get(kind)
    if problem is None:
        problem = str(ctx.get("error", err["msg"]))
    if not err["loc"]:  # a check across variables (a model validator) names them itself
        return problem
    if kind == "literal_error":
        problem = problem.replace(" or ", ", ")
    if name in UNSHOWN:
        return f"{name}: {problem}"
    return f"{name}={raw!r}: {problem}"
