"""The rating store: generations, votes, guild settings and model versions behind one class.

Every public method is one transaction and takes/returns plain data (bot.store.types). Votes
are single upsert/delete statements keyed by (generation_id, user_id), so concurrent and
duplicate reaction events can neither lose a vote nor count one twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Select,
    SmallInteger,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.store.db import make_engine
from bot.store.models import (
    FILTER_LEVELS,
    GenerationRow,
    GuildSettingsRow,
    ModelVersionRow,
    VoteRow,
    utcnow,
)
from bot.store.types import (
    GenerationInfo,
    GuildSettings,
    ModelVersion,
    NewGeneration,
    Reconciled,
    Stats,
)
from memebot.errors import UsageError

VOTE_VALUES = (1, -1)
GUILD_SETTING_FIELDS = ("filter_level", "default_style", "allowed_channel_ids")


class Store:
    """Constructed from an AsyncEngine (see make_engine); `close()` disposes of it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queueing this process's writes on an asyncio lock
        # is far faster than letting each connection sleep in SQLite's busy handler (its
        # back-off reaches 100 ms); busy_timeout still covers other processes.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    @classmethod
    def from_url(cls, url: str, **engine_kwargs: Any) -> Store:
        return cls(make_engine(url, **engine_kwargs))

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on success (writes queue on SQLite)."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self._sessions())
            await stack.enter_async_context(session.begin())
            yield session

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    def _insert(self, table: Any) -> Any:
        """The dialect's INSERT (both have on_conflict_do_update/do_nothing)."""
        mod = postgresql if self.dialect == "postgresql" else sqlite
        return mod.insert(table)

    # -- generations -------------------------------------------------------------------------

    async def record_generation(self, g: NewGeneration) -> int:
        """Stores a generation; returns its id."""
        row = GenerationRow(
            guild_id=g.guild_id,
            channel_id=g.channel_id,
            message_id=g.message_id,
            user_id=g.user_id,
            template=g.template,
            boxes=list(g.boxes),
            options=dict(g.options),
            seed=g.seed,
            model_version=g.model_version,
            timings=dict(g.timings),
            created_at=g.created_at or utcnow(),
        )
        async with self._write() as s:
            s.add(row)
            await s.flush()
            return row.id

    async def attach_message(self, generation_id: int, message_id: int) -> bool:
        """Sets the message id once the followup is sent; False if no such generation."""
        async with self._write() as s:
            result = await s.execute(
                update(GenerationRow)
                .where(GenerationRow.id == generation_id)
                .values(message_id=message_id)
            )
            return _rowcount(result) > 0

    async def generation_by_message(self, message_id: int) -> GenerationInfo | None:
        async with self._read() as s:
            rows = (
                await s.execute(
                    _with_tally(select(GenerationRow)).where(GenerationRow.message_id == message_id)
                )
            ).all()
        return _info(*rows[0]) if rows else None

    async def generation(self, generation_id: int) -> GenerationInfo | None:
        async with self._read() as s:
            rows = (
                await s.execute(
                    _with_tally(select(GenerationRow)).where(GenerationRow.id == generation_id)
                )
            ).all()
        return _info(*rows[0]) if rows else None

    async def recent_generations(self, since: datetime, limit: int = 500) -> list[GenerationInfo]:
        """Posted generations (message id set) created at or after `since`, newest first."""
        q = (
            _with_tally(select(GenerationRow))
            .where(GenerationRow.message_id.is_not(None), GenerationRow.created_at >= since)
            .order_by(GenerationRow.created_at.desc(), GenerationRow.id.desc())
            .limit(limit)
        )
        async with self._read() as s:
            return [_info(*r) for r in (await s.execute(q)).all()]

    # -- votes -------------------------------------------------------------------------------

    async def set_vote(self, message_id: int, user_id: int, value: int) -> bool:
        """The user's vote on the generation posted as `message_id` becomes `value` (+1/-1).

        One INSERT ... SELECT ... ON CONFLICT DO UPDATE: the latest event wins, a duplicate is a
        no-op, concurrent voters never overwrite each other. False: not a generation's message.
        """
        _check_value(value)
        now = utcnow()
        source = select(
            GenerationRow.id,
            literal(user_id, BigInteger),
            literal(value, SmallInteger),
            literal(now, DateTime(timezone=True)),
        ).where(GenerationRow.message_id == message_id)  # also SQLite's upsert-after-SELECT rule
        stmt = self._insert(VoteRow).from_select(
            ["generation_id", "user_id", "value", "updated_at"], source
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["generation_id", "user_id"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        async with self._write() as s:
            return _rowcount(await s.execute(stmt)) > 0

    async def retract_vote(self, message_id: int, user_id: int, value: int) -> bool:
        """Removes the user's vote if it is currently `value`; True if a vote was removed.

        Removing a stale 👍 after switching to 👎 therefore keeps the 👎.
        """
        _check_value(value)
        generation_id = (
            select(GenerationRow.id).where(GenerationRow.message_id == message_id)
        ).scalar_subquery()
        stmt = delete(VoteRow).where(
            VoteRow.generation_id == generation_id,
            VoteRow.user_id == user_id,
            VoteRow.value == value,
        )
        async with self._write() as s:
            return _rowcount(await s.execute(stmt)) > 0

    async def reconcile(self, generation_id: int, up: set[int], down: set[int]) -> Reconciled:
        """Makes the stored votes equal what the message's reactions say now.

        A user only in `up` votes +1, only in `down` -1, in neither has no vote. A user in both
        keeps their stored vote (it is one of the two), or gets +1 if they had none.
        """
        wanted_users = up | down
        async with self._write() as s:
            # Lock first, read after: on PostgreSQL FOR UPDATE on the generation blocks a
            # concurrent vote's foreign-key check; on SQLite the DELETE takes the write lock.
            await s.execute(
                select(GenerationRow.id).where(GenerationRow.id == generation_id).with_for_update()
            )
            removed = _rowcount(
                await s.execute(
                    delete(VoteRow).where(
                        VoteRow.generation_id == generation_id,
                        VoteRow.user_id.not_in(wanted_users),
                    )
                )
            )
            stored = dict(
                (
                    await s.execute(
                        select(VoteRow.user_id, VoteRow.value).where(
                            VoteRow.generation_id == generation_id
                        )
                    )
                )
                .tuples()
                .all()
            )
            wanted = _wanted_votes(up, down, stored)
            now = utcnow()
            changes = [
                {"generation_id": generation_id, "user_id": u, "value": v, "updated_at": now}
                for u, v in wanted.items()
                if stored.get(u) != v
            ]
            if changes:
                stmt = self._insert(VoteRow)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["generation_id", "user_id"],
                    set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
                )
                await s.execute(stmt, changes)
        added = sum(1 for c in changes if c["user_id"] not in stored)
        return Reconciled(added=added, changed=len(changes) - added, removed=removed)

    async def tally(self, generation_id: int) -> tuple[int, int]:
        """(up, down) votes on one generation."""
        q = select(_up_count(), _down_count()).where(VoteRow.generation_id == generation_id)
        async with self._read() as s:
            up, down = (await s.execute(q)).one()
        return int(up or 0), int(down or 0)

    async def votes(self, generation_id: int) -> dict[int, int]:
        """{user_id: value} for one generation."""
        q = select(VoteRow.user_id, VoteRow.value).where(VoteRow.generation_id == generation_id)
        async with self._read() as s:
            return dict((await s.execute(q)).tuples().all())

    async def top(
        self,
        guild_id: int | None,
        *,
        template: str | None = None,
        since: datetime | None = None,
        limit: int = 10,
    ) -> list[GenerationInfo]:
        """Best-rated generations with at least one vote: net score, then upvote share, then
        more votes, then the oldest first. `guild_id=None`: every guild."""
        tally = _tally_subquery()
        up = func.coalesce(tally.c.up, 0)
        down = func.coalesce(tally.c.down, 0)
        share = cast(up, Float) / cast(up + down, Float)
        q = (
            select(GenerationRow, up, down)
            .join(tally, tally.c.generation_id == GenerationRow.id)
            .order_by(
                (up - down).desc(),
                share.desc(),
                (up + down).desc(),
                GenerationRow.created_at,
                GenerationRow.id,
            )
            .limit(limit)
        )
        if guild_id is not None:
            q = q.where(GenerationRow.guild_id == guild_id)
        if template is not None:
            q = q.where(GenerationRow.template == template)
        if since is not None:
            q = q.where(GenerationRow.created_at >= since)
        async with self._read() as s:
            return [_info(*r) for r in (await s.execute(q)).all()]

    async def stats(self, guild_id: int | None) -> Stats:
        """Counts for one guild (`None`: every guild)."""
        gens = select(func.count(GenerationRow.id))
        votes = select(_up_count(), _down_count()).join(
            GenerationRow, GenerationRow.id == VoteRow.generation_id
        )
        last = select(GenerationRow.model_version).order_by(
            GenerationRow.created_at.desc(), GenerationRow.id.desc()
        )
        if guild_id is not None:
            gens = gens.where(GenerationRow.guild_id == guild_id)
            votes = votes.where(GenerationRow.guild_id == guild_id)
            last = last.where(GenerationRow.guild_id == guild_id)
        async with self._read() as s:
            n = (await s.execute(gens)).scalar_one()
            up, down = (await s.execute(votes)).one()
            version = (await s.execute(last.limit(1))).scalar_one_or_none()
        up, down = int(up or 0), int(down or 0)
        return Stats(
            generations=int(n), votes=up + down, up=up, down=down, last_model_version=version
        )

    # -- guild settings ----------------------------------------------------------------------

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """The guild's settings; the defaults when it never changed any."""
        async with self._read() as s:
            row = await s.get(GuildSettingsRow, guild_id)
        return _guild(row) if row is not None else GuildSettings(guild_id=guild_id)

    async def update_guild_settings(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Changes some of filter_level, default_style, allowed_channel_ids; returns the result.

        Unknown fields and bad values raise UsageError naming them.
        """
        values = _check_guild_changes(changes)
        values["updated_at"] = utcnow()
        defaults = GuildSettings(guild_id=guild_id)
        row = {
            "guild_id": guild_id,
            "filter_level": defaults.filter_level,
            "default_style": defaults.default_style,
            "allowed_channel_ids": list(defaults.allowed_channel_ids),
        } | values
        stmt = self._insert(GuildSettingsRow).values(row)
        stmt = stmt.on_conflict_do_update(index_elements=["guild_id"], set_=values)
        async with self._write() as s:
            await s.execute(stmt)
            fresh = await s.get(GuildSettingsRow, guild_id, populate_existing=True)
            assert fresh is not None  # just upserted in this transaction
            return _guild(fresh)

    # -- privacy -----------------------------------------------------------------------------

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        """Deletes the user's votes, their generations and every vote on those.

        Returns (the user's own votes deleted, generations deleted).
        """
        async with self._write() as s:
            votes = _rowcount(await s.execute(delete(VoteRow).where(VoteRow.user_id == user_id)))
            # Votes by others on these generations go with them (ON DELETE CASCADE).
            gens = _rowcount(
                await s.execute(delete(GenerationRow).where(GenerationRow.user_id == user_id))
            )
        return votes, gens

    # -- model versions ----------------------------------------------------------------------

    async def record_model_version(
        self,
        version: str,
        *,
        path: str,
        parent: str | None = None,
        metrics: dict[str, Any] | None = None,
        created_by: str | None = None,
        activate: bool = False,
    ) -> ModelVersion:
        """Registers a model artifact (UsageError if `version` exists); `activate` makes it the
        active one in the same transaction."""
        async with self._write() as s:
            if await s.get(ModelVersionRow, version) is not None:
                raise UsageError(f"model version {version!r} is already recorded")
            s.add(
                ModelVersionRow(
                    version=version,
                    path=path,
                    parent=parent,
                    metrics=dict(metrics or {}),
                    created_by=created_by,
                    created_at=utcnow(),
                    active=False,
                )
            )
            await s.flush()
            if activate:
                await _activate(s, version)
            row = await s.get(ModelVersionRow, version, populate_existing=True)
            assert row is not None
            return _model(row)

    async def activate_model_version(self, version: str) -> ModelVersion:
        """Makes `version` the active model (rollback too); UsageError if it is unknown."""
        async with self._write() as s:
            if await s.get(ModelVersionRow, version) is None:
                raise UsageError(f"unknown model version {version!r}")
            await _activate(s, version)
            row = await s.get(ModelVersionRow, version, populate_existing=True)
            assert row is not None
            return _model(row)

    async def model_versions(self) -> list[ModelVersion]:
        """Every recorded model, newest first."""
        q = select(ModelVersionRow).order_by(
            ModelVersionRow.created_at.desc(), ModelVersionRow.version
        )
        async with self._read() as s:
            return [_model(r) for r in (await s.execute(q)).scalars()]

    async def active_model_version(self) -> ModelVersion | None:
        q = select(ModelVersionRow).where(ModelVersionRow.active.is_(True))
        async with self._read() as s:
            row = (await s.execute(q)).scalar_one_or_none()
        return _model(row) if row is not None else None


# -- helpers (plain functions: the rules without a database) ----------------------------------


def _wanted_votes(up: set[int], down: set[int], stored: dict[int, int]) -> dict[int, int]:
    """The votes the reactions imply (see Store.reconcile for the rule)."""
    wanted = {u: 1 for u in up - down} | {u: -1 for u in down - up}
    for u in up & down:
        wanted[u] = stored.get(u, 1)
    return wanted


def _check_value(value: int) -> None:
    if value not in VOTE_VALUES:
        raise ValueError(f"vote value must be +1 or -1, not {value!r}")


def _check_guild_changes(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(GUILD_SETTING_FIELDS))
    if unknown:
        raise UsageError(
            f"unknown guild setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(GUILD_SETTING_FIELDS)}"
        )
    values = dict(changes)
    if "filter_level" in values and values["filter_level"] not in FILTER_LEVELS:
        raise UsageError(
            f"filter_level={values['filter_level']!r}: choose one of {', '.join(FILTER_LEVELS)}"
        )
    if "default_style" in values and not (
        values["default_style"] is None or isinstance(values["default_style"], str)
    ):
        raise UsageError(f"default_style={values['default_style']!r}: expected a style name")
    if "allowed_channel_ids" in values:
        ids = values["allowed_channel_ids"]
        if not isinstance(ids, Iterable) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise UsageError(f"allowed_channel_ids={ids!r}: expected channel ids (integers)")
        values["allowed_channel_ids"] = sorted(set(ids))
    return values


def _up_count() -> Any:
    return func.coalesce(func.sum(case((VoteRow.value > 0, 1), else_=0)), 0)


def _down_count() -> Any:
    return func.coalesce(func.sum(case((VoteRow.value < 0, 1), else_=0)), 0)


def _tally_subquery() -> Any:
    return (
        select(
            VoteRow.generation_id,
            _up_count().label("up"),
            _down_count().label("down"),
        )
        .group_by(VoteRow.generation_id)
        .subquery("tally")
    )


def _with_tally(q: Select[Any]) -> Select[Any]:
    """`select(GenerationRow)` plus its up and down counts: correlated counts, which use the
    votes primary key (generation_id first) instead of aggregating the whole table."""

    def count(sign: Any) -> Any:
        return (
            select(func.count())
            .where(VoteRow.generation_id == GenerationRow.id, sign)
            .scalar_subquery()
        )

    return q.add_columns(count(VoteRow.value > 0), count(VoteRow.value < 0))


async def _activate(s: AsyncSession, version: str) -> None:
    # Two statements in one transaction; the partial unique index rejects a racing second
    # activation instead of leaving two active models.
    await s.execute(
        update(ModelVersionRow).where(ModelVersionRow.active.is_(True)).values(active=False)
    )
    await s.execute(
        update(ModelVersionRow).where(ModelVersionRow.version == version).values(active=True)
    )


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _utc(dt: datetime) -> datetime:
    # SQLite returns naive datetimes; everything stored is UTC.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _info(row: GenerationRow, up: int = 0, down: int = 0) -> GenerationInfo:
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
        created_at=_utc(row.created_at),
        up=int(up or 0),
        down=int(down or 0),
    )


def _guild(row: GuildSettingsRow) -> GuildSettings:
    return GuildSettings(
        guild_id=row.guild_id,
        filter_level=row.filter_level,
        default_style=row.default_style,
        allowed_channel_ids=tuple(row.allowed_channel_ids or ()),
        updated_at=_utc(row.updated_at),
    )


def _model(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(
        version=row.version,
        path=row.path,
        parent=row.parent,
        metrics=dict(row.metrics or {}),
        created_by=row.created_by,
        created_at=_utc(row.created_at),
        active=bool(row.active),
    )
