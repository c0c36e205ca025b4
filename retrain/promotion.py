"""Which model every engine serves: promotion of a gated candidate, rollback to the previous
version, and the `active` pointer an engine restarted later starts from
(MEMEBOT_MODEL=<models dir>/active).

The store's active version, the engines and `models/active` must agree. Each change therefore
goes engines first (every replica reloads through engine.client), then the store, then the
pointer; a refusal part-way sends the replicas that had switched back. The worker calls
`promote` at the end of a run; the bot's `/model rollback` and `memebot model rollback` call
`rollback`. Imports the store and the engine client only: no training code, no TensorFlow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from engine.client import ReloadResult, reload_all
from memebot.errors import ArtifactError, MemebotError
from memebot.settings import Settings
from memebot.store import ModelVersion, RunInfo, Store


class PromotionFailed(MemebotError):
    """The engines (or the store) refused the change; nothing was switched."""


def read_meta(artifact: Path) -> dict[str, Any]:
    """meta.json of an artifact as a plain dict (its version at least); the engines check the
    rest when they load it."""
    try:
        meta = json.loads((artifact / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{artifact}: no readable meta.json ({e})") from e
    if not isinstance(meta, dict) or "version" not in meta:
        raise ArtifactError(f"{artifact / 'meta.json'}: no model version in it")
    return meta


async def ensure_active(store: Store, settings: Settings) -> ModelVersion:
    """The active model; on a fresh store, the one the engines start with (MEMEBOT_MODEL) is
    recorded as the first version."""
    active = await store.active_model_version()
    if active is not None:
        return active
    meta = read_meta(settings.model_dir)
    version = str(meta["version"])
    known = {v.version: v for v in await store.model_versions()}
    if version in known:
        return await store.activate_model_version(version)
    return await store.record_model_version(
        version,
        path=str(settings.model_dir.resolve()),
        metrics=dict(meta.get("metrics") or {}),
        created_by="initial (MEMEBOT_MODEL)",
        activate=True,
    )


async def promote(
    store: Store,
    settings: Settings,
    artifact: Path,
    version: str,
    active: ModelVersion,
    run: RunInfo,
    gate: dict[str, Any],
) -> str | None:
    """Every engine loads the candidate, then the store records it as active and
    models/active points at it. None on success, else why it was not promoted (engines that
    had already switched go back to the active model)."""
    token = settings.engine_secret
    results = await reload_all(settings.replicas, artifact, token=token)
    gate["replicas"] = [r.__dict__ for r in results]
    refused = [r for r in results if r.status in ("refused", "error")]
    switched = tuple(r.url for r in results if r.status == "ok")
    if refused:
        if switched:
            await reload_all(switched, Path(active.path), token=token)
        return "engines refused the candidate: " + "; ".join(
            f"{r.url}: {r.detail}" for r in refused
        )
    # An unreachable replica (down or restarting) starts from models/active, updated below.
    try:
        await store.record_model_version(
            version,
            path=str(artifact.resolve()),
            parent=active.version,
            metrics={"gate": gate, "run_id": run.id, "mode": run.mode},
            created_by=run.requested_by,
            activate=True,
        )
    except Exception:
        # Engines and store must agree: the replicas go back to the recorded active model.
        await reload_all(switched, Path(active.path), token=token)
        raise
    point_active(settings.models_dir, artifact)
    return None


async def rollback(store: Store, settings: Settings) -> tuple[ModelVersion, list[ReloadResult]]:
    """Back to the active model's parent (gate-free): engines reload it, the store and
    models/active follow. PromotionFailed if there is no previous version or an engine
    refuses it."""
    active = await store.active_model_version()
    if active is None or active.parent is None:
        raise PromotionFailed("no previous model version to roll back to")
    versions = {v.version: v for v in await store.model_versions()}
    target = versions.get(active.parent)
    if target is None:
        raise PromotionFailed(f"the previous version {active.parent} is not recorded")
    results = await reload_all(settings.replicas, Path(target.path), token=settings.engine_secret)
    bad = [r for r in results if r.status in ("refused", "error")]
    if bad:
        raise PromotionFailed(
            f"engines refused {target.version}: " + "; ".join(f"{r.url}: {r.detail}" for r in bad)
        )
    now_active = await store.activate_model_version(target.version)
    point_active(settings.models_dir, Path(target.path))
    return now_active, results


def point_active(models_dir: Path, target: Path) -> Path:
    """`models_dir/active` -> target, swapped atomically (a new symlink renamed over the old):
    an engine starting at any moment sees the old model or the new one, never nothing."""
    models_dir.mkdir(parents=True, exist_ok=True)
    link = models_dir / "active"
    tmp = models_dir / f".active.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.resolve(), target_is_directory=True)
    tmp.replace(link)
    return link
