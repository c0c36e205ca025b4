"""A server's taste run, asked for by /retrain (retrain/taste_requests.py), run by the worker.

    claim (queued -> running) -> curating (the server's votes: retrain/taste_curation.py)
    -> fitting (retrain/taste_fit.py, NumPy, seconds) -> gating (held-out AUC against what
    serves the server now) -> promoting: the file MODELS/tastes/GUILD/vN.npz, the store's
    taste version (inactive), the pointer active.json, the version made active -> succeeded

No TensorFlow and no subprocess: a taste run is cheap. A run killed at any point leaves the old
taste serving, since engines follow the pointer and the pointer is written last; a file written
by a killed run is overwritten by the next run, which numbers its version the same. Before it
records anything the run reads its own status back: `memebot data forget-guild` marks the
server's running taste run failed when it deletes the server's data, and such a run then
records nothing and deletes the file it wrote.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from memebot.artifact.templates import TemplateTable
from memebot.catalog_file import read_layouts
from memebot.crowd import crowd_for
from memebot.errors import ArtifactError, ScorerError, UsageError
from memebot.logs import get_logger
from memebot.settings import Settings
from memebot.store import RunInfo, Store
from memebot.store.types import TasteVersion
from memebot.taste_file import (
    TasteScorer,
    load_taste,
    read_pointer,
    save_taste,
    taste_file,
    write_active,
)
from retrain.promotion import ensure_active
from retrain.taste_curation import curate_guild
from retrain.taste_fit import fit_taste, gate_taste, typical_lengths

log = get_logger(__name__)

# The store recorded why (forget-guild); a finish_run after it is a no-op.
ENDED = "the run was ended while it ran"
Outcome = tuple[str, str | None, dict[str, Any] | None, str | None]


def _current_taste(tv: TasteVersion | None, base_version: str) -> TasteScorer | None:
    """The server's serving taste, if its file loads and fits this base model: what a new
    taste must beat. One fitted on another base model, or unreadable, serves no longer (the
    engine refuses it), so the default is the baseline then."""
    if tv is None or not tv.path:
        return None
    try:
        return load_taste(Path(tv.path), base_version=base_version, guild_id=tv.guild_id)
    except ScorerError as e:
        log.warning("taste v%s of guild %s is no baseline: %s", tv.version, tv.guild_id, e)
        return None


async def taste_steps(store: Store, settings: Settings, run: RunInfo) -> Outcome:
    """The run after its claim: (status, error, gate, candidate) for finish_run."""
    guild_id = run.guild_id
    if guild_id is None:
        return "failed", "a taste run without a server", None, None
    active = await ensure_active(store, settings)
    await store.update_run(run.id, stage="curating", parent_version=active.version)
    await sync_store(store, settings, guild_id)
    curated = await curate_guild(store, guild_id)  # NotEnoughVotes: the run fails, saying so
    counts = curated.counts()
    await store.update_run(run.id, stage="fitting", progress={"curation": counts})
    try:  # the lengths the engine draws on the base model, what the length factor scales
        table = TemplateTable.load(Path(active.path) / "templates.json")
        typical = typical_lengths(table, await asyncio.to_thread(read_layouts))
    except ArtifactError as e:
        log.warning(
            "no template lengths in %s, the taste keeps people's lengths: %s", active.path, e
        )
        typical = None
    candidate = await asyncio.to_thread(
        fit_taste, curated, base_version=active.version, typical=typical
    )

    await store.update_run(run.id, stage="evaluating")
    current_tv = await store.active_taste(guild_id)
    current = _current_taste(current_tv, active.version)
    try:
        default = crowd_for(Path(active.path), active.version)
    except ScorerError as e:  # no usable crowd scorer: chance is the baseline
        log.warning("crowd scorer of %s not usable as the baseline: %s", active.version, e)
        default = None
    gate = gate_taste(candidate, curated.heldout, current=current, default=default)
    # the candidate's length factor beside its gate: how it would change the server's lengths
    length = {k: v for k, v in candidate.metrics.items() if k.startswith("length_")}
    gate_json: dict[str, Any] = gate.to_json() | {"counts": counts, "length": length}
    if not gate.promoted:
        return "rejected", gate.summary(), gate_json, None

    await store.update_run(run.id, stage="promoting")
    latest = await store.taste_versions(guild_id, limit=1)
    version = (latest[0].version if latest else 0) + 1
    candidate.version, candidate.heldout_auc = version, gate.candidate_auc
    path = taste_file(settings.models_dir, guild_id, version)
    await asyncio.to_thread(save_taste, path, candidate)
    if not await _still_running(store, run.id):
        path.unlink(missing_ok=True)
        return "failed", ENDED, None, None
    # Recorded inactive, then the pointer, then active: a kill before the pointer leaves an
    # unused record (a rejected taste's kind), and the old taste serving.
    tv = await store.add_taste_version(
        guild_id,
        base_version=active.version,
        n_votes=candidate.n_votes,
        heldout_auc=gate.candidate_auc,
        path=str(path),
        metrics=candidate.metrics | {"gate": gate.to_json()},
        run_id=run.id,
        created_by=run.requested_by,
        activate=False,
    )
    if tv.version != version:  # another recording of this server numbered first: never expected
        raise UsageError(f"taste numbered v{tv.version}, its file is v{version}: run again")
    if not await _still_running(store, run.id):
        # forget-guild ran between the check and the record: what it deleted stays deleted.
        await store.forget_guild(guild_id)
        path.unlink(missing_ok=True)
        return "failed", ENDED, None, None
    await asyncio.to_thread(write_active, settings.models_dir, guild_id, version)
    await store.activate_taste_version(guild_id, version)
    return "succeeded", None, gate_json, f"taste v{version}"


async def _still_running(store: Store, run_id: int) -> bool:
    run = await store.run(run_id)
    return run is not None and run.status == "running"


async def sync_store(store: Store, settings: Settings, guild_id: int) -> None:
    """Makes the store's active taste the one the pointer names (what serves): a run killed
    between writing the pointer and activating its record leaves them apart. Called at the
    start of the server's next taste run."""
    pointer = await asyncio.to_thread(read_pointer, settings.models_dir, guild_id)
    tv = await store.active_taste(guild_id)
    if (
        pointer is not None
        and (tv is None or tv.version != pointer.version)
        and await store.taste_version(guild_id, pointer.version) is not None
    ):
        await store.activate_taste_version(guild_id, pointer.version)
