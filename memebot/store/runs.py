"""Retraining runs in the store: what the bot and `memebot retrain` enqueue, the worker claims
and updates, and /retrain shows. The training itself lives in retrain/ (never in the bot).

A run is of a kind: `base` (the shared generator) or `taste` (one guild's taste). One base run
at a time, and one taste run per guild at a time, are database rules (partial unique indexes on
`in_progress`), so two admins asking at once, from two shards or a shell, get one run and the
other is told which.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from memebot.choices import RUN_KINDS, RUN_MODES
from memebot.errors import UsageError
from memebot.store.sql import rowcount, to_info, utc, with_tally
from memebot.store.tables import GenerationRow, RetrainRunRow, VoteRow, utcnow
from memebot.store.types import GenerationInfo, RunInfo

FINISHED = ("succeeded", "rejected", "failed")


class RunInProgress(UsageError):
    """A run is already queued or running; `run` says which."""

    def __init__(self, run: RunInfo) -> None:
        who = f" by {run.requested_by}" if run.requested_by else ""
        if run.kind == "taste":
            what, rule = "taste run", "one taste run per server at a time"
        else:
            what, rule = "retrain run", "one run at a time"
        super().__init__(
            f"{what} #{run.id} ({run.mode}{who}) is already {run.status}"
            f" (stage {run.stage}); {rule}"
        )
        self.run = run


class RunsMixin:
    """Store methods for retraining runs (mixed into memebot.store.Store)."""

    if TYPE_CHECKING:

        def _write(self) -> AbstractAsyncContextManager[AsyncSession]: ...
        def _read(self) -> AbstractAsyncContextManager[AsyncSession]: ...

    async def create_run(
        self,
        mode: str,
        *,
        kind: str = "base",
        requested_by: str | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
        parent_version: str | None = None,
    ) -> RunInfo:
        """A new queued run; RunInProgress if one of its kind (of a taste run: for the same
        guild) is queued or running."""
        if mode not in RUN_MODES:
            raise UsageError(f"mode {mode!r}: choose {' or '.join(RUN_MODES)}")
        if kind not in RUN_KINDS:
            raise UsageError(f"kind {kind!r}: choose {' or '.join(RUN_KINDS)}")
        if kind == "taste" and guild_id is None:
            raise UsageError("a taste run is for one server: guild_id is needed")
        row = RetrainRunRow(
            status="queued",
            mode=mode,
            kind=kind,
            requested_by=requested_by,
            guild_id=guild_id,
            channel_id=channel_id,
            message_id=message_id,
            stage="queued",
            progress={},
            gate={},
            parent_version=parent_version,
            in_progress=True,
            created_at=utcnow(),
        )
        try:
            async with self._write() as s:
                s.add(row)
                await s.flush()
                return to_run(row)
        except IntegrityError:
            current = await self.current_run(kind, guild_id=guild_id)
            if current is None:  # finished between the insert and this read: try once more
                return await self.create_run(
                    mode,
                    kind=kind,
                    requested_by=requested_by,
                    guild_id=guild_id,
                    channel_id=channel_id,
                    message_id=message_id,
                    parent_version=parent_version,
                )
            raise RunInProgress(current) from None

    async def claim_run(self, run_id: int, worker: str) -> RunInfo | None:
        """queued -> running for `worker`; None if the run is not queued (taken, finished)."""
        async with self._write() as s:
            result = await s.execute(
                update(RetrainRunRow)
                .where(RetrainRunRow.id == run_id, RetrainRunRow.status == "queued")
                .values(status="running", worker=worker, started_at=utcnow(), stage="starting")
            )
            if rowcount(result) == 0:
                return None
            row = await s.get(RetrainRunRow, run_id, populate_existing=True)
            assert row is not None
            return to_run(row)

    async def update_run(self, run_id: int, **changes: Any) -> None:
        """Sets some of stage, progress, parent_version, candidate_version, channel_id,
        message_id on an unfinished run (a finished run's record is final)."""
        allowed = {
            "stage",
            "progress",
            "parent_version",
            "candidate_version",
            "channel_id",
            "message_id",
        }
        if unknown := set(changes) - allowed:
            raise UsageError(f"update_run: unknown fields {sorted(unknown)}")
        async with self._write() as s:
            await s.execute(
                update(RetrainRunRow)
                .where(RetrainRunRow.id == run_id, RetrainRunRow.status.not_in(FINISHED))
                .values(**changes)
            )

    async def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        error: str | None = None,
        gate: dict[str, Any] | None = None,
        candidate_version: str | None = None,
        stage: str = "done",
    ) -> bool:
        """Records the outcome once; False if the run had already finished."""
        if status not in FINISHED:
            raise UsageError(f"finish_run: status {status!r} is not one of {FINISHED}")
        values: dict[str, Any] = {
            "status": status,
            "in_progress": None,
            "finished_at": utcnow(),
            "stage": stage,
            "error": error[:2000] if error else None,
        }
        if gate is not None:
            values["gate"] = gate
        if candidate_version is not None:
            values["candidate_version"] = candidate_version
        async with self._write() as s:
            result = await s.execute(
                update(RetrainRunRow)
                .where(RetrainRunRow.id == run_id, RetrainRunRow.status.not_in(FINISHED))
                .values(**values)
            )
            return rowcount(result) > 0

    async def run(self, run_id: int) -> RunInfo | None:
        async with self._read() as s:
            row = await s.get(RetrainRunRow, run_id)
            return to_run(row) if row is not None else None

    async def current_run(
        self, kind: str = "base", *, guild_id: int | None = None
    ) -> RunInfo | None:
        """The queued or running base run, or (kind taste) guild_id's taste run, if any."""
        q = select(RetrainRunRow).where(
            RetrainRunRow.in_progress.is_(True), RetrainRunRow.kind == kind
        )
        if kind == "taste":
            q = q.where(RetrainRunRow.guild_id == guild_id)
        async with self._read() as s:
            row = (await s.execute(q)).scalar_one_or_none()
            return to_run(row) if row is not None else None

    async def runs(
        self, limit: int = 20, *, kind: str | None = None, guild_id: int | None = None
    ) -> list[RunInfo]:
        """The newest runs first; only those of `kind` and of `guild_id` when given."""
        q = select(RetrainRunRow).order_by(RetrainRunRow.id.desc()).limit(limit)
        if kind is not None:
            q = q.where(RetrainRunRow.kind == kind)
        if guild_id is not None:
            q = q.where(RetrainRunRow.guild_id == guild_id)
        async with self._read() as s:
            return [to_run(r) for r in (await s.execute(q)).scalars()]

    # -- what curation reads -----------------------------------------------------------------

    async def rated_generations(self) -> list[GenerationInfo]:
        """Every generation with at least one vote, with its tally, oldest first (a meme
        deleted on Discord is no training data)."""
        voted = select(VoteRow.generation_id).distinct()
        q = (
            with_tally(select(GenerationRow))
            .where(GenerationRow.id.in_(voted), GenerationRow.deleted_at.is_(None))
            .order_by(GenerationRow.id)
        )
        async with self._read() as s:
            return [to_info(*r) for r in (await s.execute(q)).all()]

    async def votes_since(self, since: datetime | None, *, guild_id: int | None = None) -> int:
        """Votes cast or changed at or after `since` (None: all votes), on `guild_id`'s memes
        when given."""
        q = select(func.count()).select_from(VoteRow)
        if guild_id is not None:
            q = q.join(GenerationRow, GenerationRow.id == VoteRow.generation_id).where(
                GenerationRow.guild_id == guild_id
            )
        if since is not None:
            q = q.where(VoteRow.updated_at >= since)
        async with self._read() as s:
            return int((await s.execute(q)).scalar_one())


def to_run(row: RetrainRunRow) -> RunInfo:
    return RunInfo(
        id=row.id,
        status=row.status,
        mode=row.mode,
        kind=row.kind,
        requested_by=row.requested_by,
        guild_id=row.guild_id,
        channel_id=row.channel_id,
        message_id=row.message_id,
        stage=row.stage,
        progress=dict(row.progress or {}),
        error=row.error,
        parent_version=row.parent_version,
        candidate_version=row.candidate_version,
        gate=dict(row.gate or {}),
        worker=row.worker,
        created_at=utc(row.created_at),
        started_at=utc(row.started_at) if row.started_at else None,
        finished_at=utc(row.finished_at) if row.finished_at else None,
    )
