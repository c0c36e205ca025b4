"""Query pieces shared by the Store's methods, and ORM rows turned into plain dataclasses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, TextClause, bindparam, case, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from memebot.choices import STYLES, FilterLevel
from memebot.store.tables import GenerationRow, GuildSettingsRow, ModelVersionRow, VoteRow
from memebot.store.types import GenerationInfo, GuildSettings, ModelVersion


def up_count() -> Any:
    return func.coalesce(func.sum(case((VoteRow.value > 0, 1), else_=0)), 0)


def down_count() -> Any:
    return func.coalesce(func.sum(case((VoteRow.value < 0, 1), else_=0)), 0)


def tally_subquery() -> Any:
    return (
        select(
            VoteRow.generation_id,
            up_count().label("up"),
            down_count().label("down"),
        )
        .group_by(VoteRow.generation_id)
        .subquery("tally")
    )


def with_tally(q: Select[Any]) -> Select[Any]:
    """`select(GenerationRow)` plus its up and down counts: correlated counts, which use the
    votes primary key (generation_id first) instead of aggregating the whole table."""

    def count(sign: Any) -> Any:
        return (
            select(func.count())
            .where(VoteRow.generation_id == GenerationRow.id, sign)
            .scalar_subquery()
        )

    return q.add_columns(count(VoteRow.value > 0), count(VoteRow.value < 0))


def live() -> Any:
    """The generations whose message was not deleted on Discord."""
    return GenerationRow.deleted_at.is_(None)


def compile_once(stmt: Any, dialect: str) -> TextClause:
    """`stmt` compiled now into a cacheable text() with the same typed parameters.

    SQLAlchemy 2.0 never caches the dialects' INSERT ... ON CONFLICT (inherit_cache=False), so
    compiling it for every vote cost ~1 ms, more than the transaction itself.
    """
    # Base dialects with the named paramstyle give ":name" parameters that text() understands;
    # the database's own dialect then adds its driver's details (asyncpg's $n::TYPE casts).
    base = postgresql.dialect if dialect == "postgresql" else sqlite.dialect
    compiled = stmt.compile(dialect=base(paramstyle="named"))
    binds = [bindparam(name, type_=b.type) for name, b in compiled.binds.items()]
    return text(compiled.string).bindparams(*binds)


def rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def utc(dt: datetime) -> datetime:
    # SQLite returns naive datetimes; everything stored is UTC.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def to_info(row: GenerationRow, up: int = 0, down: int = 0) -> GenerationInfo:
    return GenerationInfo(
        id=row.id,
        guild_id=row.guild_id,
        channel_id=row.channel_id,
        message_id=row.message_id,
        user_id=row.user_id,
        template=row.template,
        boxes=list(row.boxes),
        options=dict(row.options),
        seed=row.seed,
        model_version=row.model_version,
        timings=dict(row.timings),
        created_at=utc(row.created_at),
        up=int(up or 0),
        down=int(down or 0),
        deleted_at=utc(row.deleted_at) if row.deleted_at is not None else None,
    )


def to_guild_settings(row: GuildSettingsRow) -> GuildSettings:
    return GuildSettings(
        guild_id=row.guild_id,
        # The table's CHECK constraint holds it to FILTER_LEVELS.
        filter_level=cast(FilterLevel, row.filter_level),
        # A style no longer offered reads as "the bot's default".
        default_style=next((st for st in STYLES if st == row.default_style), None),
        allowed_channel_ids=tuple(row.allowed_channel_ids or ()),
        updated_at=utc(row.updated_at),
    )


def to_model_version(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(
        version=row.version,
        path=row.path,
        parent=row.parent,
        metrics=dict(row.metrics or {}),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        active=bool(row.active),
    )
