"""Per-guild tastes in the store: each guild's fitted taste versions (numbered from 1, at most
one active), rollback along the chain of promotions, what taste curation reads (one guild's
memes with each vote), and the guild lifecycle (when the bot left; deleting a guild's data).

One active taste per guild is a database rule (a partial unique index), as one active model is
for model versions; a guild's versions are numbered in the transaction that records them, under
a per-guild lock on PostgreSQL, and the unique (guild_id, version) index turns any racing second
recording into a retry.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from memebot.errors import UsageError
from memebot.store.sql import rowcount, to_info, utc, with_tally
from memebot.store.tables import (
    ForgottenUserRow,
    GenerationRow,
    GuildRow,
    GuildSettingsRow,
    RetrainRunRow,
    TasteVersionRow,
    VoteRow,
    utcnow,
)
from memebot.store.types import ForgottenGuild, RatedMeme, TasteVersion

RECORD_TRIES = 3  # a racing recording of the same guild's next version: number it again
TASTE_LOCK = 0x74617374  # PostgreSQL advisory lock namespace ("tast", an int4)


class NoTaste(UsageError):
    """The guild has no taste to roll back (or no such version)."""


class TastesMixin:
    """Store methods for guild tastes and the guild lifecycle (mixed into Store)."""

    if TYPE_CHECKING:

        def _write(self) -> AbstractAsyncContextManager[AsyncSession]: ...
        def _read(self) -> AbstractAsyncContextManager[AsyncSession]: ...
        def _insert(self, table: Any) -> Any: ...

    # -- taste versions ----------------------------------------------------------------------

    async def add_taste_version(
        self,
        guild_id: int,
        *,
        base_version: str,
        n_votes: int,
        heldout_auc: float | None = None,
        path: str | None = None,
        blob: bytes | None = None,
        metrics: dict[str, Any] | None = None,
        run_id: int | None = None,
        created_by: str | None = None,
        activate: bool = True,
    ) -> TasteVersion:
        """Records the guild's next taste version (1 for its first); `activate` makes it the
        guild's active taste in the same transaction. `previous_version` is the version active
        before it (None: the default taste), where a rollback returns to.

        A taste not activated (the gate kept the current one) is recorded for its numbers.
        """
        if path is None and blob is None:
            raise UsageError("a taste version needs a path or a blob")
        for attempt in range(RECORD_TRIES):
            try:
                async with self._write() as s:
                    await _lock_guild(s, guild_id)
                    active = await _active_row(s, guild_id)
                    latest = (
                        await s.execute(
                            select(func.max(TasteVersionRow.version)).where(
                                TasteVersionRow.guild_id == guild_id
                            )
                        )
                    ).scalar_one_or_none()
                    row = TasteVersionRow(
                        guild_id=guild_id,
                        version=int(latest or 0) + 1,
                        base_version=base_version,
                        n_votes=n_votes,
                        heldout_auc=heldout_auc,
                        path=path,
                        blob=blob,
                        metrics=dict(metrics or {}),
                        run_id=run_id,
                        created_by=created_by,
                        created_at=utcnow(),
                        previous_version=active.version if active is not None else None,
                        active=False,
                    )
                    s.add(row)
                    await s.flush()
                    if activate:
                        await _activate(s, guild_id, row.version)
                        await s.refresh(row)
                    return to_taste(row)
            except IntegrityError:
                # Another process recorded this guild's next version (or activated one) first.
                if attempt == RECORD_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def active_taste(self, guild_id: int) -> TasteVersion | None:
        """The guild's active taste; None: it has none (the default taste serves it)."""
        async with self._read() as s:
            row = await _active_row(s, guild_id)
            return to_taste(row) if row is not None else None

    async def taste_version(self, guild_id: int, version: int) -> TasteVersion | None:
        q = select(TasteVersionRow).where(
            TasteVersionRow.guild_id == guild_id, TasteVersionRow.version == version
        )
        async with self._read() as s:
            row = (await s.execute(q)).scalar_one_or_none()
            return to_taste(row) if row is not None else None

    async def taste_versions(self, guild_id: int, limit: int = 20) -> list[TasteVersion]:
        """The guild's taste versions, newest first."""
        q = (
            select(TasteVersionRow)
            .where(TasteVersionRow.guild_id == guild_id)
            .order_by(TasteVersionRow.version.desc())
            .limit(limit)
        )
        async with self._read() as s:
            return [to_taste(r) for r in (await s.execute(q)).scalars()]

    async def active_tastes(self) -> list[TasteVersion]:
        """Every guild's active taste (what engines may preload), by guild."""
        q = (
            select(TasteVersionRow)
            .where(TasteVersionRow.active.is_(True))
            .order_by(TasteVersionRow.guild_id)
        )
        async with self._read() as s:
            return [to_taste(r) for r in (await s.execute(q)).scalars()]

    async def activate_taste_version(self, guild_id: int, version: int) -> TasteVersion:
        """Makes `version` the guild's active taste; NoTaste if the guild has no such version."""
        async with self._write() as s:
            await _lock_guild(s, guild_id)
            row = (
                await s.execute(
                    select(TasteVersionRow).where(
                        TasteVersionRow.guild_id == guild_id, TasteVersionRow.version == version
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                raise NoTaste(f"this server has no taste version {version}")
            await _activate(s, guild_id, version)
            await s.refresh(row)
            return to_taste(row)

    async def rollback_taste(self, guild_id: int) -> TasteVersion | None:
        """The guild's taste back to the one before the active one (its `previous_version`);
        from its first taste, back to none (the default taste): returns None then.
        NoTaste when the guild has no active taste."""
        async with self._write() as s:
            await _lock_guild(s, guild_id)
            active = await _active_row(s, guild_id)
            if active is None:
                raise NoTaste("this server has no taste of its own to roll back")
            previous = active.previous_version
            if previous is None:
                await s.execute(
                    update(TasteVersionRow)
                    .where(TasteVersionRow.guild_id == guild_id, TasteVersionRow.active.is_(True))
                    .values(active=False)
                )
                return None
            await _activate(s, guild_id, previous)
            row = await _active_row(s, guild_id)
            assert row is not None  # the previous version is the guild's: just activated
            return to_taste(row)

    # -- what taste curation reads -----------------------------------------------------------

    async def guild_rated_memes(self, guild_id: int) -> list[RatedMeme]:
        """The guild's generations with at least one vote, each with its votes, oldest first.

        A vote by a user who asked /forget-me at or after the meme was made is left out (the
        store deletes those votes and refuses new ones; this holds even for a vote written by
        a reconciliation racing the request).
        """
        gens = (
            with_tally(select(GenerationRow))
            .where(
                GenerationRow.guild_id == guild_id,
                GenerationRow.id.in_(select(VoteRow.generation_id)),
                GenerationRow.deleted_at.is_(None),  # deleted on Discord: no training data
            )
            .order_by(GenerationRow.id)
        )
        votes = (
            select(VoteRow.generation_id, VoteRow.user_id, VoteRow.value)
            .join(GenerationRow, GenerationRow.id == VoteRow.generation_id)
            .outerjoin(ForgottenUserRow, ForgottenUserRow.user_id == VoteRow.user_id)
            .where(
                GenerationRow.guild_id == guild_id,
                (ForgottenUserRow.forgotten_at.is_(None))
                | (ForgottenUserRow.forgotten_at < GenerationRow.created_at),
            )
        )
        async with self._read() as s:
            infos = [to_info(*r) for r in (await s.execute(gens)).all()]
            by_gen: dict[int, dict[int, int]] = {}
            for gid, user, value in (await s.execute(votes)).tuples():
                by_gen.setdefault(gid, {})[user] = int(value)
        return [RatedMeme(g, by_gen[g.id]) for g in infos if by_gen.get(g.id)]

    # -- guild lifecycle ---------------------------------------------------------------------

    async def guild_left(self, guild_id: int, at: datetime | None = None) -> None:
        """The bot was removed from the guild at `at` (default now): its retention clock starts
        (an earlier, still running clock is kept: a second removal event is no reset)."""
        at = at or utcnow()
        stmt = self._insert(GuildRow).values(guild_id=guild_id, left_at=at, updated_at=at)
        stmt = stmt.on_conflict_do_update(
            index_elements=["guild_id"],
            set_={"left_at": func.coalesce(GuildRow.left_at, at), "updated_at": at},
        )
        async with self._write() as s:
            await s.execute(stmt)

    async def guild_present(self, guild_id: int) -> bool:
        """The bot is in the guild (joined again, or seen at start-up): its retention clock is
        cleared. True if one was running. One UPDATE that changes nothing for a guild the bot
        never left, so calling it for every guild at start-up is cheap."""
        async with self._write() as s:
            result = await s.execute(
                update(GuildRow)
                .where(GuildRow.guild_id == guild_id, GuildRow.left_at.is_not(None))
                .values(left_at=None, updated_at=utcnow())
            )
            return rowcount(result) > 0

    async def guild_left_at(self, guild_id: int) -> datetime | None:
        """When the bot left the guild; None while it is there (or never left)."""
        async with self._read() as s:
            row = await s.get(GuildRow, guild_id)
            return utc(row.left_at) if row is not None and row.left_at is not None else None

    async def guilds_left_before(self, cutoff: datetime) -> list[int]:
        """Guilds the bot left before `cutoff` (and did not rejoin): the sweep's to delete."""
        q = (
            select(GuildRow.guild_id)
            .where(GuildRow.left_at.is_not(None), GuildRow.left_at < cutoff)
            .order_by(GuildRow.left_at)
        )
        async with self._read() as s:
            return list((await s.execute(q)).scalars())

    async def known_guilds(self) -> set[int]:
        """Every guild the store holds something of (memes, tastes, settings)."""
        q = (
            select(GenerationRow.guild_id)
            .where(GenerationRow.guild_id.is_not(None))
            .union(select(TasteVersionRow.guild_id), select(GuildSettingsRow.guild_id))
        )
        async with self._read() as s:
            return {int(g) for g in (await s.execute(q)).scalars() if g is not None}

    async def forget_guild(
        self, guild_id: int, *, left_before: datetime | None = None
    ) -> ForgottenGuild:
        """Deletes everything the store keeps of the guild, in one transaction: its taste
        versions, its memes and every vote on them, its settings and its lifecycle row.
        Retraining runs stay (the owner's record; they hold no votes or captions); one of its
        taste runs still queued or running is marked failed.

        `left_before`: only if the bot left the guild before then and did not rejoin, checked
        in the same transaction (the sweep's case: a rejoin just after it listed the guild
        keeps everything). Otherwise nothing is deleted.
        """
        async with self._write() as s:
            if left_before is not None:
                left = (
                    await s.execute(
                        select(GuildRow.left_at)
                        .where(GuildRow.guild_id == guild_id)
                        .with_for_update()
                    )
                ).scalar_one_or_none()
                if left is None or utc(left) >= left_before:
                    return ForgottenGuild(guild_id=guild_id)
            paths = tuple(
                p
                for p in (
                    await s.execute(
                        select(TasteVersionRow.path).where(TasteVersionRow.guild_id == guild_id)
                    )
                ).scalars()
                if p
            )
            tastes = rowcount(
                await s.execute(delete(TasteVersionRow).where(TasteVersionRow.guild_id == guild_id))
            )
            gens = select(GenerationRow.id).where(GenerationRow.guild_id == guild_id)
            # Counted here, not left to ON DELETE CASCADE (which SQLite runs only with
            # foreign keys on).
            votes = rowcount(
                await s.execute(delete(VoteRow).where(VoteRow.generation_id.in_(gens)))
            )
            generations = rowcount(
                await s.execute(delete(GenerationRow).where(GenerationRow.guild_id == guild_id))
            )
            settings = rowcount(
                await s.execute(
                    delete(GuildSettingsRow).where(GuildSettingsRow.guild_id == guild_id)
                )
            )
            await s.execute(delete(GuildRow).where(GuildRow.guild_id == guild_id))
            # A taste run of the guild still going would fit a taste from deleted votes: it
            # ends here, and says why (a worker's later finish_run is then a no-op).
            await s.execute(
                update(RetrainRunRow)
                .where(
                    RetrainRunRow.kind == "taste",
                    RetrainRunRow.guild_id == guild_id,
                    RetrainRunRow.in_progress.is_(True),
                )
                .values(
                    status="failed",
                    in_progress=None,
                    finished_at=utcnow(),
                    stage="done",
                    error="the server's data was deleted (forget-guild)",
                )
            )
        return ForgottenGuild(
            guild_id=guild_id,
            tastes=tastes,
            generations=generations,
            votes=votes,
            settings=settings,
            taste_paths=paths,
        )


async def _lock_guild(s: AsyncSession, guild_id: int) -> None:
    """On PostgreSQL, one transaction at a time changes a guild's tastes (released at commit):
    a recording racing a rollback then sees the other's result instead of failing on an index.
    SQLite has one writer at a time already."""
    if s.get_bind().dialect.name == "postgresql":
        # Two int4 keys: the namespace and the guild id folded into 31 bits (a collision
        # only makes two guilds take turns).
        await s.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :key)"),
            {"ns": TASTE_LOCK, "key": guild_id % 0x7FFFFFFF},
        )


async def _active_row(s: AsyncSession, guild_id: int) -> TasteVersionRow | None:
    q = select(TasteVersionRow).where(
        TasteVersionRow.guild_id == guild_id, TasteVersionRow.active.is_(True)
    )
    return (await s.execute(q)).scalar_one_or_none()


async def _activate(s: AsyncSession, guild_id: int, version: int) -> None:
    # Two statements in one transaction; the partial unique index rejects a racing second
    # activation instead of leaving the guild two active tastes.
    await s.execute(
        update(TasteVersionRow)
        .where(TasteVersionRow.guild_id == guild_id, TasteVersionRow.active.is_(True))
        .values(active=False)
    )
    await s.execute(
        update(TasteVersionRow)
        .where(TasteVersionRow.guild_id == guild_id, TasteVersionRow.version == version)
        .values(active=True)
    )


def to_taste(row: TasteVersionRow) -> TasteVersion:
    return TasteVersion(
        guild_id=row.guild_id,
        version=row.version,
        base_version=row.base_version,
        n_votes=row.n_votes,
        heldout_auc=row.heldout_auc,
        path=row.path,
        blob=bytes(row.blob) if row.blob is not None else None,
        metrics=dict(row.metrics or {}),
        run_id=row.run_id,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        previous_version=row.previous_version,
        active=bool(row.active),
    )
