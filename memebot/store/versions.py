"""Model versions in the store: every artifact a run promoted (or the engines started with),
its metrics, parent and who asked, and which one is active. One active version is a database
rule (a partial unique index), so two promotions racing cannot leave two active models."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from memebot.errors import UsageError
from memebot.store.sql import to_model_version
from memebot.store.tables import ModelVersionRow, utcnow
from memebot.store.types import ModelVersion


class VersionsMixin:
    """Store methods for model versions (mixed into memebot.store.Store)."""

    if TYPE_CHECKING:

        def _write(self) -> AbstractAsyncContextManager[AsyncSession]: ...
        def _read(self) -> AbstractAsyncContextManager[AsyncSession]: ...

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
            try:
                await s.flush()
            except IntegrityError as e:  # recorded by another process since the check
                raise UsageError(f"model version {version!r} is already recorded") from e
            if activate:
                await _activate(s, version)
            row = await s.get(ModelVersionRow, version, populate_existing=True)
            assert row is not None
            return to_model_version(row)

    async def activate_model_version(self, version: str) -> ModelVersion:
        """Makes `version` the active model (rollback too); UsageError if it is unknown."""
        async with self._write() as s:
            if await s.get(ModelVersionRow, version) is None:
                raise UsageError(f"unknown model version {version!r}")
            await _activate(s, version)
            row = await s.get(ModelVersionRow, version, populate_existing=True)
            assert row is not None
            return to_model_version(row)

    async def model_versions(self) -> list[ModelVersion]:
        """Every recorded model, newest first."""
        q = select(ModelVersionRow).order_by(
            ModelVersionRow.created_at.desc(), ModelVersionRow.version
        )
        async with self._read() as s:
            return [to_model_version(r) for r in (await s.execute(q)).scalars()]

    async def active_model_version(self) -> ModelVersion | None:
        q = select(ModelVersionRow).where(ModelVersionRow.active.is_(True))
        async with self._read() as s:
            row = (await s.execute(q)).scalar_one_or_none()
        return to_model_version(row) if row is not None else None


async def _activate(s: AsyncSession, version: str) -> None:
    # Two statements in one transaction; the partial unique index rejects a racing second
    # activation instead of leaving two active models.
    await s.execute(
        update(ModelVersionRow).where(ModelVersionRow.active.is_(True)).values(active=False)
    )
    await s.execute(
        update(ModelVersionRow).where(ModelVersionRow.version == version).values(active=True)
    )
