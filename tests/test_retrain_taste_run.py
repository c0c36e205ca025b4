"""A server's taste run (retrain/taste_run.py) through the real queue, worker and store: it
curates that server's votes, fits, gates, writes the file and the pointer; a second run on the
same votes is rejected by the gate; rollback moves store and pointer; too few votes queue
nothing; two admins at once get one run; a run that fails or is killed midway leaves the old
taste serving; a run ended by forget-guild records nothing."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from harness.databases import with_store
from harness.factories import rate_memes, scratch_settings
from memebot.settings import Settings
from memebot.store import RunInProgress, Store
from memebot.taste_file import (
    load_taste,
    read_active,
    read_pointer,
    save_taste,
    taste_file,
    write_active,
)
from retrain.queue import RunQueue
from retrain.taste_curation import NotEnoughVotes
from retrain.taste_requests import describe_taste, request_taste_run, rollback_taste
from retrain.worker import execute_run, recover_abandoned

GUILD = 700001
OTHER = 700002
BASE = "char-gru-taste-test"


def settings(tmp_path: Path, db_url: str) -> Settings:
    model = tmp_path / "model"
    model.mkdir()
    (model / "meta.json").write_text(json.dumps({"version": BASE}))
    return scratch_settings(
        tmp_path,
        database_url=db_url,
        model_dir=model,
        models_dir=tmp_path / "models",
        queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
    )


async def rate(store: Store, guild: int, n: int, *, topic: str = "cat", start: int = 0) -> None:
    """n memes in `guild`, each with one vote by a member (not its requester): the captions
    about `topic` are liked, the others disliked."""
    await rate_memes(
        store, guild, n, topic=topic, start=start, seed=guild + start, first_message=guild * 1000
    )


def work(s: Settings) -> bool:
    queue = RunQueue(s.queue_url, execute=lambda rid: execute_run(rid, s))
    try:
        return queue.work_once()
    finally:
        queue.close()


async def request(store: Store, s: Settings, guild: int = GUILD) -> int:
    queue = await asyncio.to_thread(RunQueue, s.queue_url)
    try:
        return (await request_taste_run(store, queue, guild, requested_by="admin")).id
    finally:
        await asyncio.to_thread(queue.close)


def test_a_run_promotes_then_the_gate_keeps_it_then_rollback(tmp_path: Path, db_url: str) -> None:
    s = settings(tmp_path, db_url)

    async def body(store: Store) -> None:
        await rate(store, GUILD, 60)
        await rate(store, OTHER, 60, topic="dog")
        rid = await request(store, s)
        assert await asyncio.to_thread(work, s)
        run = await store.run(rid)
        assert run is not None and run.kind == "taste", run
        assert run.status == "succeeded" and run.candidate_version == "taste v1", run.error
        assert run.gate["promoted"] and run.gate["baseline"] == "chance"
        assert run.gate["counts"]["kept"] == 60
        tv = await store.active_taste(GUILD)
        assert tv is not None and tv.version == 1 and tv.base_version == BASE and tv.n_votes == 60
        assert tv.run_id == rid and tv.heldout_auc == run.gate["candidate_auc"]
        path = read_active(s.models_dir, GUILD)
        assert path == taste_file(s.models_dir, GUILD, 1) and tv.path == str(path)
        taste = load_taste(path, base_version=BASE, guild_id=GUILD)
        assert taste.version == 1 and taste.heldout_auc == tv.heldout_auc
        liked, disliked = taste.score(["my cat|monday coffee|", "my boss|monday coffee|"])
        assert liked > disliked
        # The other server: nothing of its own.
        assert await store.active_taste(OTHER) is None and read_active(s.models_dir, OTHER) is None
        assert "v1" in describe_taste(tv) and "60 votes" in describe_taste(tv)

        # The same votes again: the refit is no better, so nothing changes.
        rid2 = await request(store, s)
        assert await asyncio.to_thread(work, s)
        run2 = await store.run(rid2)
        assert run2 is not None and run2.status == "rejected", run2
        assert run2.gate["baseline"] == "taste v1" and not run2.gate["promoted"]
        assert "kept the current taste" in (run2.error or "")
        assert [v.version for v in await store.taste_versions(GUILD)] == [1]
        assert read_pointer(s.models_dir, GUILD).version == 1  # type: ignore[union-attr]

        # Rollback from the first taste: back to the default, pointer gone.
        assert await rollback_taste(store, s, GUILD) is None
        assert await store.active_taste(GUILD) is None and read_active(s.models_dir, GUILD) is None
        assert "the default" in describe_taste(None)

    with_store(db_url, body)


def test_too_few_votes_and_two_admins_at_once(tmp_path: Path, db_url: str) -> None:
    s = settings(tmp_path, db_url)

    async def body(store: Store) -> None:
        await rate(store, GUILD, 10)
        with pytest.raises(NotEnoughVotes, match="10 more rated memes"):
            await request(store, s)
        assert await store.runs() == []
        await rate(store, GUILD, 30, start=10)
        got = await asyncio.gather(request(store, s), request(store, s), return_exceptions=True)
        runs = [g for g in got if isinstance(g, int)]
        refused = [g for g in got if isinstance(g, RunInProgress)]
        assert len(runs) == 1 and len(refused) == 1, got
        assert "one taste run per server at a time" in str(refused[0])
        # Another server is not held up by this one's run.
        await rate(store, OTHER, 30, topic="dog")
        assert await request(store, s, OTHER) > runs[0]
        assert await asyncio.to_thread(work, s) and await asyncio.to_thread(work, s)
        assert {r.status for r in await store.runs(kind="taste")} == {"succeeded"}

    with_store(db_url, body)


def test_a_failed_or_killed_run_leaves_the_old_taste_serving(tmp_path: Path, db_url: str) -> None:
    s = settings(tmp_path, db_url)

    async def body(store: Store) -> None:
        await rate(store, GUILD, 30, topic="pizza")
        await request(store, s)
        assert await asyncio.to_thread(work, s)
        v1 = await store.active_taste(GUILD)
        assert v1 is not None and v1.version == 1
        before = taste_file(s.models_dir, GUILD, 1).read_bytes()
        # The server's taste grew (cats too): a fit on every vote beats v1 at the gate.
        await rate(store, GUILD, 90, topic="cat", start=30)

        # 1. The file cannot be written (a directory in its place): the run fails.
        blocker = taste_file(s.models_dir, GUILD, 2)
        blocker.mkdir()
        rid = await request(store, s)
        assert await asyncio.to_thread(work, s)
        run = await store.run(rid)
        assert run is not None and run.status == "failed", run
        assert read_active(s.models_dir, GUILD) == taste_file(s.models_dir, GUILD, 1)
        assert (await store.active_taste(GUILD)).version == 1  # type: ignore[union-attr]
        blocker.rmdir()

        # 2. A worker killed after writing its file: the run is still "running" under a dead
        # process, a v2 file of its own on disk, nothing recorded, the pointer as it was.
        rid = await request(store, s)
        await store.claim_run(rid, f"{os.uname().nodename}:999999")  # no such process
        orphan = load_taste(taste_file(s.models_dir, GUILD, 1), base_version=BASE)
        orphan.version = 2
        save_taste(taste_file(s.models_dir, GUILD, 2), orphan)
        assert rid in await recover_abandoned(store)
        assert (await store.run(rid)).status == "failed"  # type: ignore[union-attr]
        assert read_active(s.models_dir, GUILD) == taste_file(s.models_dir, GUILD, 1)
        assert taste_file(s.models_dir, GUILD, 1).read_bytes() == before
        assert (await store.active_taste(GUILD)).version == 1  # type: ignore[union-attr]

        # The next run goes through: v2 (the orphan file overwritten), then rollback to v1.
        # (The killed run's queue job comes first: the worker skips it, it is not queued.)
        rid = await request(store, s)
        assert await asyncio.to_thread(work, s) and await asyncio.to_thread(work, s)
        run = await store.run(rid)
        assert run is not None and run.status == "succeeded", run
        assert read_active(s.models_dir, GUILD) == taste_file(s.models_dir, GUILD, 2)
        v2 = load_taste(taste_file(s.models_dir, GUILD, 2), base_version=BASE)
        assert v2.n_votes == 120
        back = await rollback_taste(store, s, GUILD)
        assert back is not None and back.version == 1
        assert read_active(s.models_dir, GUILD) == taste_file(s.models_dir, GUILD, 1)

    with_store(db_url, body)


def test_a_run_ended_by_forget_guild_records_nothing(tmp_path: Path, db_url: str) -> None:
    s = settings(tmp_path, db_url)

    async def body(store: Store) -> None:
        await rate(store, GUILD, 30)
        rid = await request(store, s)
        # forget-guild while the run waits in the queue: it is failed, the worker skips it.
        gone = await store.forget_guild(GUILD)
        assert gone.generations == 30
        assert await asyncio.to_thread(work, s)
        run = await store.run(rid)
        assert run is not None and run.status == "failed" and "forget-guild" in (run.error or "")
        assert await store.taste_versions(GUILD) == []
        assert not taste_file(s.models_dir, GUILD, 1).exists()

    with_store(db_url, body)


def test_a_run_killed_after_its_pointer_is_followed_by_the_store(
    tmp_path: Path, db_url: str
) -> None:
    """The kill between writing the pointer and activating the record: v2 serves (the pointer),
    the store still says v1; the server's next run makes the store say v2 before it fits."""
    s = settings(tmp_path, db_url)

    async def body(store: Store) -> None:
        await rate(store, GUILD, 30)
        await request(store, s)
        assert await asyncio.to_thread(work, s)
        v1 = load_taste(taste_file(s.models_dir, GUILD, 1), base_version=BASE)
        v1.version = 2
        path = save_taste(taste_file(s.models_dir, GUILD, 2), v1)
        await store.add_taste_version(
            GUILD, base_version=BASE, n_votes=30, path=str(path), activate=False
        )
        write_active(s.models_dir, GUILD, 2)
        assert (await store.active_taste(GUILD)).version == 1  # type: ignore[union-attr]
        rid = await request(store, s)
        assert await asyncio.to_thread(work, s)
        run = await store.run(rid)
        assert run is not None and run.status == "rejected"  # the same votes: no better
        assert run.gate["baseline"] == "taste v2"
        tv = await store.active_taste(GUILD)
        assert tv is not None and tv.version == 2 and tv.previous_version == 1
        assert read_pointer(s.models_dir, GUILD).version == 2  # type: ignore[union-attr]
        back = await rollback_taste(store, s, GUILD)
        assert back is not None and back.version == 1
        assert read_active(s.models_dir, GUILD) == taste_file(s.models_dir, GUILD, 1)

    with_store(db_url, body)
