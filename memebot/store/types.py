"""Plain data crossing the store's boundary (no ORM objects leave memebot.store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memebot.choices import DEFAULT_FILTER_LEVEL, FilterLevel, Style


@dataclass(frozen=True, slots=True)
class NewGeneration:
    """What the bot knows about a meme when it records it (before or after posting it)."""

    channel_id: int | None
    user_id: int
    template: str  # slug
    boxes: list[str]
    guild_id: int | None = None  # None in a DM
    options: dict[str, Any] = field(default_factory=dict)  # style, start_text, ...
    seed: int | None = None
    model_version: str | None = None
    timings: dict[str, Any] = field(default_factory=dict)  # engine timings, ms
    message_id: int | None = None  # or later through Store.attach_message
    created_at: datetime | None = None  # None: now (UTC)


@dataclass(frozen=True, slots=True)
class GenerationInfo:
    id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    user_id: int
    template: str
    boxes: list[str]
    options: dict[str, Any]
    seed: int | None
    model_version: str | None
    timings: dict[str, Any]
    created_at: datetime  # UTC, aware
    up: int = 0
    down: int = 0
    deleted_at: datetime | None = None  # the message was deleted on Discord

    @property
    def score(self) -> int:
        return self.up - self.down

    @property
    def upvote_share(self) -> float | None:
        total = self.up + self.down
        return self.up / total if total else None


@dataclass(frozen=True, slots=True)
class Stats:
    generations: int
    votes: int
    up: int
    down: int
    last_model_version: str | None  # of the newest generation in scope

    @property
    def upvote_share(self) -> float | None:
        return self.up / self.votes if self.votes else None


@dataclass(frozen=True, slots=True)
class GuildSettings:
    guild_id: int
    filter_level: FilterLevel = DEFAULT_FILTER_LEVEL
    default_style: Style | None = None  # None: the bot's default
    allowed_channel_ids: tuple[int, ...] = ()  # empty: every channel
    updated_at: datetime | None = None  # None: never changed (defaults)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    version: str
    path: str
    parent: str | None
    metrics: dict[str, Any]
    created_by: str | None
    created_at: datetime
    active: bool


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What Store.reconcile changed to make stored votes match a message's reactions."""

    added: int = 0
    changed: int = 0
    removed: int = 0

    @property
    def total(self) -> int:
        return self.added + self.changed + self.removed


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A retraining run (see retrain/ and docs/RETRAIN.md)."""

    id: int
    status: str  # queued | running | succeeded | rejected | failed
    mode: str  # finetune | full
    requested_by: str | None
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    stage: str  # queued, curating, training, evaluating, promoting, done
    progress: dict[str, Any]  # epoch, epochs, val_loss, eta_s, counts...
    error: str | None
    parent_version: str | None
    candidate_version: str | None
    gate: dict[str, Any]
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    kind: str = "base"  # base: the shared generator; taste: guild_id's taste

    @property
    def in_progress(self) -> bool:
        return self.status in ("queued", "running")


@dataclass(frozen=True, slots=True)
class TasteVersion:
    """One fitted taste of one guild (memebot.store.tastes)."""

    guild_id: int
    version: int  # 1, 2, ... per guild
    base_version: str  # the base model it was fitted on
    n_votes: int
    heldout_auc: float | None
    path: str | None
    blob: bytes | None
    metrics: dict[str, Any]
    run_id: int | None
    created_by: str | None
    created_at: datetime
    previous_version: int | None  # the guild's active version when this one was recorded
    active: bool


@dataclass(frozen=True, slots=True)
class RatedMeme:
    """A guild's generation with every vote on it that counts ({user_id: +1/-1}), what taste
    curation reads (retrain/taste_curation.py)."""

    generation: GenerationInfo
    votes: dict[int, int]


@dataclass(frozen=True, slots=True)
class ForgottenGuild:
    """What Store.forget_guild deleted; `taste_paths` are the taste files the caller removes."""

    guild_id: int
    tastes: int = 0
    generations: int = 0
    votes: int = 0
    settings: int = 0
    taste_paths: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.tastes + self.generations + self.votes + self.settings
