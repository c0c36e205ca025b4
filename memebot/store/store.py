"""The rating store: generations, votes and guild settings here; model versions (versions.py),
retraining runs (runs.py) and guild tastes and lifecycle (tastes.py) mixed in; one class for
the callers.

Every public method is one transaction and takes/returns plain data (memebot.store.types). Votes
are single upsert/delete statements keyed by (generation_id, user_id), so concurrent and
duplicate reaction events can neither lose a vote nor count one twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    SmallInteger,
    bindparam,
    cast,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from memebot.store.db import make_db
from memebot.store.rules import check_guild_changes, check_vote_value, wanted_votes
from memebot.store.runs import RunsMixin
from memebot.store.sql import (
    compile_once,
    down_count,
    live,
    rowcount,
    tally_subquery,
    to_guild_settings,
    to_info,
    up_count,
    with_tally,
)
from memebot.store.tables import (
    ForgottenUserRow,
    GenerationRow,
    GuildSettingsRow,
    VoteRow,
    utcnow,
)
from memebot.store.tastes import TastesMixin
from memebot.store.types import (
    GenerationInfo,
    GuildSettings,
    NewGeneration,
    Reconciled,
    Stats,
)
from memebot.store.versions import VersionsMixin


class Store(RunsMixin, VersionsMixin, TastesMixin):
    """Constructed from a database handle (see make_db); `close()` disposes of it."""

    def __init__(self, db: AsyncEngine) -> None:
        self.db = db
        self.dialect = db.dialect.name
        self._sessions = async_sessionmaker(db, expire_on_commit=False)
        # SQLite has one writer at a time. This process's writes queue on an asyncio lock and
        # share one connection: far faster than connections sleeping in SQLite's busy handler
        # (its back-off reaches 100 ms). busy_timeout still covers other processes.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        self._writer: AsyncConnection | None = None
        self._vote_upsert = compile_once(self._vote_upsert_statement(), self.dialect)

    @classmethod
    def from_url(cls, url: str, **db_kwargs: Any) -> Store:
        return cls(make_db(url, **db_kwargs))

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        await self.db.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction that commits on success (the votes' path: no ORM
        session, which cost more than the statement). On SQLite: the shared writer, queued."""
        if self._write_lock is None:
            async with self.db.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            if self._writer is None:
                self._writer = await self.db.connect()
            try:
                async with self._writer.begin():
                    yield self._writer
            except BaseException:
                # The next write starts from a fresh connection, whatever state this one is in.
                writer, self._writer = self._writer, None
                await writer.close()
                raise

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """An ORM session inside _transaction(); its pending changes are flushed at the end."""
        async with self._transaction() as conn, self._sessions(bind=conn) as session:
            yield session
            await session.flush()

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    def _insert(self, table: Any) -> Any:
        """The dialect's INSERT (both have on_conflict_do_update/do_nothing)."""
        mod = postgresql if self.dialect == "postgresql" else sqlite
        return mod.insert(table)

    def _vote_upsert_statement(self) -> Any:
        """INSERT INTO votes SELECT <generation id>, :user_id, :value, :updated_at FROM
        generations WHERE message_id = :message_id (and the user did not /forget-me after it
        was made) ON CONFLICT (generation_id, user_id) DO UPDATE: the latest event wins, a
        duplicate is a no-op, concurrent voters never overwrite each other, and no row appears
        for a message that is not a generation."""
        source = select(
            GenerationRow.id,
            bindparam("user_id", type_=BigInteger),
            bindparam("value", type_=SmallInteger),
            bindparam("updated_at", type_=DateTime(timezone=True)),
        ).where(
            GenerationRow.message_id == bindparam("message_id", type_=BigInteger),
            live(),
            ~_forgotten_before(bindparam("user_id", type_=BigInteger)),
        )
        # (SQLite needs the WHERE: it tells its parser that ON CONFLICT is not a join's ON.)
        stmt = self._insert(VoteRow).from_select(
            ["generation_id", "user_id", "value", "updated_at"], source
        )
        return stmt.on_conflict_do_update(
            index_elements=["generation_id", "user_id"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )

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
            return rowcount(result) > 0

    async def generation_by_message(self, message_id: int) -> GenerationInfo | None:
        return await self._one_generation(GenerationRow.message_id == message_id)

    async def generation(self, generation_id: int) -> GenerationInfo | None:
        return await self._one_generation(GenerationRow.id == generation_id)

    async def _one_generation(self, condition: Any) -> GenerationInfo | None:
        async with self._read() as s:
            rows = (await s.execute(with_tally(select(GenerationRow)).where(condition))).all()
        return to_info(*rows[0]) if rows else None

    async def recent_generations(self, since: datetime, limit: int = 500) -> list[GenerationInfo]:
        """Posted generations (message id set, not deleted) created at or after `since`,
        newest first."""
        q = (
            with_tally(select(GenerationRow))
            .where(
                GenerationRow.message_id.is_not(None),
                GenerationRow.created_at >= since,
                live(),
            )
            .order_by(GenerationRow.created_at.desc(), GenerationRow.id.desc())
            .limit(limit)
        )
        async with self._read() as s:
            return [to_info(*r) for r in (await s.execute(q)).all()]

    # -- votes -------------------------------------------------------------------------------

    async def set_vote(self, message_id: int, user_id: int, value: int) -> bool:
        """The user's vote on the generation posted as `message_id` becomes `value` (+1/-1).

        One statement, one transaction (see _vote_upsert_statement). False: the message is not
        a generation's.
        """
        check_vote_value(value)
        params = {
            "user_id": user_id,
            "value": value,
            "updated_at": utcnow(),
            "message_id": message_id,
        }
        async with self._transaction() as conn:
            return rowcount(await conn.execute(self._vote_upsert, params)) > 0

    async def retract_vote(self, message_id: int, user_id: int, value: int) -> bool:
        """Removes the user's vote if it is currently `value`; True if a vote was removed.

        Removing a stale 👍 after switching to 👎 therefore keeps the 👎.
        """
        check_vote_value(value)
        generation_id = (
            select(GenerationRow.id).where(GenerationRow.message_id == message_id)
        ).scalar_subquery()
        stmt = delete(VoteRow).where(
            VoteRow.generation_id == generation_id,
            VoteRow.user_id == user_id,
            VoteRow.value == value,
        )
        async with self._transaction() as conn:
            return rowcount(await conn.execute(stmt)) > 0

    async def mark_deleted(self, message_ids: Collection[int]) -> int:
        """The memes posted as these messages were deleted on Discord; returns how many memes
        that newly were (other messages and memes already marked are left alone)."""
        if not message_ids:
            return 0
        stmt = (
            update(GenerationRow)
            .where(GenerationRow.message_id.in_(list(message_ids)), live())
            .values(deleted_at=utcnow())
        )
        async with self._transaction() as conn:
            return rowcount(await conn.execute(stmt))

    async def clear_votes(self, message_id: int, value: int | None = None) -> int:
        """Every vote on the meme posted as `message_id` (only those of `value` if given) is
        retracted: its reactions were removed all at once. Returns how many."""
        if value is not None:
            check_vote_value(value)
        generation_id = (
            select(GenerationRow.id).where(GenerationRow.message_id == message_id)
        ).scalar_subquery()
        stmt = delete(VoteRow).where(VoteRow.generation_id == generation_id)
        if value is not None:
            stmt = stmt.where(VoteRow.value == value)
        async with self._transaction() as conn:
            return rowcount(await conn.execute(stmt))

    async def reconcile(self, generation_id: int, up: set[int], down: set[int]) -> Reconciled:
        """Makes the stored votes equal what the message's reactions say now.

        A user only in `up` votes +1, only in `down` -1, in neither has no vote. A user in both
        keeps their stored vote (it is one of the two), or gets +1 if they had none. A user who
        asked /forget-me after the generation was made has no vote on it. A generation deleted
        meanwhile (/forget-me) is left alone.
        """
        async with self._write() as s:
            # Lock first, read after: on PostgreSQL FOR UPDATE on the generation blocks a
            # concurrent vote's foreign-key check; on SQLite the DELETE takes the write lock.
            exists = await s.execute(
                select(GenerationRow.id).where(GenerationRow.id == generation_id).with_for_update()
            )
            if exists.first() is None:
                return Reconciled()
            forgotten = set(
                (
                    await s.execute(
                        select(ForgottenUserRow.user_id).where(
                            ForgottenUserRow.user_id.in_(up | down),
                            ForgottenUserRow.forgotten_at
                            >= select(GenerationRow.created_at)
                            .where(GenerationRow.id == generation_id)
                            .scalar_subquery(),
                        )
                    )
                ).scalars()
            )
            up, down = up - forgotten, down - forgotten
            wanted_users = up | down
            removed = rowcount(
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
            wanted = wanted_votes(up, down, stored)
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
        q = select(up_count(), down_count()).where(VoteRow.generation_id == generation_id)
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
        channels: Collection[int] | None = None,
    ) -> list[GenerationInfo]:
        """Best-rated generations with at least one vote: net score, then upvote share, then
        more votes, then the oldest first; deleted memes never. `guild_id=None`: every guild.
        `channels`: only memes posted in these channels (those the viewer can see); None: every
        channel."""
        tally = tally_subquery()
        up = func.coalesce(tally.c.up, 0)
        down = func.coalesce(tally.c.down, 0)
        share = cast(up, Float) / cast(up + down, Float)
        q = (
            select(GenerationRow, up, down)
            .join(tally, tally.c.generation_id == GenerationRow.id)
            .where(live())
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
        if channels is not None:
            q = q.where(GenerationRow.channel_id.in_(sorted(channels)))
        if since is not None:
            q = q.where(GenerationRow.created_at >= since)
        async with self._read() as s:
            return [to_info(*r) for r in (await s.execute(q)).all()]

    async def stats(
        self, guild_id: int | None, *, channels: Collection[int] | None = None
    ) -> Stats:
        """Counts for one guild (`None`: every guild), deleted memes left out; `channels`: only
        memes posted in these channels (None: every channel)."""
        gens = select(func.count(GenerationRow.id)).where(live())
        votes = (
            select(up_count(), down_count())
            .join(GenerationRow, GenerationRow.id == VoteRow.generation_id)
            .where(live())
        )
        last = (
            select(GenerationRow.model_version)
            .where(live())
            .order_by(GenerationRow.created_at.desc(), GenerationRow.id.desc())
        )
        if guild_id is not None:
            gens = gens.where(GenerationRow.guild_id == guild_id)
            votes = votes.where(GenerationRow.guild_id == guild_id)
            last = last.where(GenerationRow.guild_id == guild_id)
        if channels is not None:
            seen = GenerationRow.channel_id.in_(sorted(channels))
            gens, votes, last = gens.where(seen), votes.where(seen), last.where(seen)
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
        return to_guild_settings(row) if row is not None else GuildSettings(guild_id=guild_id)

    async def update_guild_settings(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Changes some of filter_level, default_style, allowed_channel_ids; returns the result.

        Unknown fields and bad values raise UsageError naming them.
        """
        values = check_guild_changes(changes)
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
            return to_guild_settings(fresh)

    # -- privacy -----------------------------------------------------------------------------

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        """Deletes the user's votes, their generations and every vote on those, and remembers
        when: their reactions on memes made until now are no votes (live or reconciled).

        Returns (the user's own votes deleted, generations deleted).
        """
        now = utcnow()
        remember = self._insert(ForgottenUserRow).values(user_id=user_id, forgotten_at=now)
        remember = remember.on_conflict_do_update(
            index_elements=["user_id"], set_={"forgotten_at": now}
        )
        async with self._write() as s:
            await s.execute(remember)
            votes = rowcount(await s.execute(delete(VoteRow).where(VoteRow.user_id == user_id)))
            # Votes by others on these generations go with them (ON DELETE CASCADE).
            gens = rowcount(
                await s.execute(delete(GenerationRow).where(GenerationRow.user_id == user_id))
            )
        return votes, gens


def _forgotten_before(user_id: Any) -> Any:
    """True when `user_id` asked /forget-me at or after the generation (in the query) was made."""
    return exists().where(
        ForgottenUserRow.user_id == user_id,
        ForgottenUserRow.forgotten_at >= GenerationRow.created_at,
    )
