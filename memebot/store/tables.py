"""The rating store's tables (SQLAlchemy 2.x declarative). Migrations in migrations/ mirror them.

Discord ids (guild, channel, message, user) are 64-bit snowflakes: BigInteger everywhere.
Timestamps are UTC; SQLite keeps them without a zone, so the store re-attaches UTC on read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from memebot.choices import DEFAULT_FILTER_LEVEL, FILTER_LEVELS, RUN_KINDS, RUN_MODES

# Named constraints: Alembic can then drop/alter them by name, and SQLite batch migrations
# (which recreate tables) keep them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        int: BigInteger,
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[int]: JSON,
    }


class GenerationRow(Base):
    """One meme the bot posted (or is about to post: message_id is set once the followup is)."""

    __tablename__ = "generations"

    # Integer, not BigInteger: only SQLite's "INTEGER PRIMARY KEY" auto-increments.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int | None]  # None in a DM
    channel_id: Mapped[int | None]
    message_id: Mapped[int | None] = mapped_column(unique=True)
    user_id: Mapped[int] = mapped_column(index=True)
    template: Mapped[str] = mapped_column(String(200), index=True)  # slug
    boxes: Mapped[list[str]]
    options: Mapped[dict[str, Any]]
    seed: Mapped[int | None]
    model_version: Mapped[str | None] = mapped_column(String(100))
    timings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the message was deleted on Discord: the meme then counts nowhere (top, stats,
    # reconciliation, curation); the row and its votes stay.
    deleted_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_generations_guild_id_created_at", "guild_id", "created_at"),)


class VoteRow(Base):
    """One user's current vote on one generation: the primary key makes it one per user."""

    __tablename__ = "votes"

    generation_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(primary_key=True, index=True)
    value: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("value IN (-1, 1)", name="value_pm1"),)


class ForgottenUserRow(Base):
    """A user who asked /forget-me: their reactions on memes made before `forgotten_at` stay on
    Discord but are no votes (reconciliation would otherwise bring the votes back)."""

    __tablename__ = "forgotten_users"

    user_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    forgotten_at: Mapped[datetime] = mapped_column(default=utcnow)


class GuildSettingsRow(Base):
    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    filter_level: Mapped[str] = mapped_column(
        String(16), server_default=text(f"'{DEFAULT_FILTER_LEVEL}'")
    )
    default_style: Mapped[str | None] = mapped_column(String(32))
    allowed_channel_ids: Mapped[list[int]]  # empty: every channel
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            f"filter_level IN ({', '.join(repr(v) for v in FILTER_LEVELS)})",
            name="filter_level_known",
        ),
    )


class ModelVersionRow(Base):
    """A trained model the bot can serve; at most one is active (partial unique index)."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000))
    parent: Mapped[str | None] = mapped_column(String(100))
    metrics: Mapped[dict[str, Any]]
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        Index(
            "uq_model_versions_one_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )


class GuildRow(Base):
    """A guild the bot was removed from: `left_at` starts the retention clock after which its
    tastes, memes and votes are deleted (retrain/guilds.py); NULL again when the bot rejoins.
    A row appears the first time the bot leaves the guild."""

    __tablename__ = "guilds"

    guild_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    left_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TasteVersionRow(Base):
    """One fitted taste of one guild (the small per-server scorer over the base model's
    captions): numbered per guild from 1, at most one active per guild (partial unique index).
    `previous_version` is the guild's active version when this one was recorded, so a rollback
    walks back the chain of promotions, as model_versions' `parent` does."""

    __tablename__ = "taste_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int]
    version: Mapped[int] = mapped_column(Integer)
    # The base model version it was fitted on: a taste scores that model's hidden states or
    # captions and means nothing for another.
    base_version: Mapped[str] = mapped_column(String(100))
    n_votes: Mapped[int] = mapped_column(Integer)
    heldout_auc: Mapped[float | None] = mapped_column(Float)
    # Where the taste is: a file under the models location, or its few KB inline (every
    # engine replica can then read it through the store); at least one of the two.
    path: Mapped[str | None] = mapped_column(String(1000))
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    metrics: Mapped[dict[str, Any]]
    run_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        Index("uq_taste_versions_guild_id_version", "guild_id", "version", unique=True),
        Index(
            "uq_taste_versions_one_active",
            "guild_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
        CheckConstraint("path IS NOT NULL OR blob IS NOT NULL", name="path_or_blob"),
    )


RUN_STATUSES = ("queued", "running", "succeeded", "rejected", "failed")


class RetrainRunRow(Base):
    """One retraining run (retrain/): queued by /retrain or `memebot retrain`, run by a worker.

    `kind` base: the shared generator (the bot owner's); taste: one guild's taste (`guild_id`).
    `in_progress` is true while queued or running and NULL after; two partial unique indexes
    make "one base run at a time" and "one taste run per guild at a time" database rules, so
    two admins asking at once get one run.
    """

    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8), server_default=text("'base'"))
    requested_by: Mapped[str | None] = mapped_column(String(100))
    guild_id: Mapped[int | None]
    # Where the bot reports progress (the message it edits); None from the shell.
    channel_id: Mapped[int | None]
    message_id: Mapped[int | None]
    stage: Mapped[str] = mapped_column(String(32))
    progress: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(String(2000))
    parent_version: Mapped[str | None] = mapped_column(String(100))
    candidate_version: Mapped[str | None] = mapped_column(String(100))
    gate: Mapped[dict[str, Any]]
    worker: Mapped[str | None] = mapped_column(String(200))  # host:pid that took it
    in_progress: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            f"status IN ({', '.join(repr(s) for s in RUN_STATUSES)})", name="status_known"
        ),
        CheckConstraint(f"mode IN ({', '.join(repr(m) for m in RUN_MODES)})", name="mode_known"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in RUN_KINDS)})", name="kind_known"),
        CheckConstraint("kind <> 'taste' OR guild_id IS NOT NULL", name="taste_has_guild"),
        Index(
            "uq_retrain_runs_one_in_progress",
            "in_progress",
            unique=True,
            sqlite_where=text("in_progress AND kind = 'base'"),
            postgresql_where=text("in_progress AND kind = 'base'"),
        ),
        Index(
            "uq_retrain_runs_one_taste_per_guild",
            "guild_id",
            unique=True,
            sqlite_where=text("in_progress AND kind = 'taste'"),
            postgresql_where=text("in_progress AND kind = 'taste'"),
        ),
    )
