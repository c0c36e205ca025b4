"""Retraining runs in the store, on SQLite and PostgreSQL: one run at a time (also when two
admins ask at once), claimed once, finished once; what curation reads."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from harness.databases import with_store
from memebot.errors import UsageError
from memebot.store import NewGeneration, RunInProgress, Store
from memebot.store.tables import utcnow


def test_one_run_at_a_time(db_url: str) -> None:
    async def body(store: Store) -> None:
        first = await store.create_run("finetune", requested_by="alice", guild_id=5)
        assert (first.status, first.stage, first.in_progress) == ("queued", "queued", True)
        with pytest.raises(RunInProgress, match=rf"#{first.id} \(finetune by alice\)") as e:
            await store.create_run("full", requested_by="bob")
        assert e.value.run.id == first.id
        assert (await store.current_run()) == first
        assert await store.finish_run(first.id, "failed", error="boom")
        assert await store.current_run() is None
        second = await store.create_run("full")
        assert second.id != first.id and second.mode == "full"

    with_store(db_url, body)


def test_two_admins_at_once_get_one_run(db_url: str) -> None:
    async def body(store: Store) -> None:
        async def ask(who: str) -> str:
            try:
                r = await store.create_run("finetune", requested_by=who)
                return f"run {r.id}"
            except RunInProgress as e:
                return f"busy {e.run.id}"

        results = await asyncio.gather(*(ask(f"admin{i}") for i in range(8)))
        created = [r for r in results if r.startswith("run")]
        assert len(created) == 1
        run_id = created[0].split()[1]
        assert all(r == f"busy {run_id}" for r in results if r.startswith("busy"))

    with_store(db_url, body)


def test_claim_once_update_finish_once(db_url: str) -> None:
    async def body(store: Store) -> None:
        r = await store.create_run("finetune")
        claimed = await store.claim_run(r.id, "host:1")
        assert claimed is not None and claimed.status == "running" and claimed.worker == "host:1"
        assert claimed.started_at is not None
        assert await store.claim_run(r.id, "host:2") is None  # taken
        await store.update_run(r.id, stage="training", progress={"epoch": 1, "val_loss": 1.5})
        got = await store.run(r.id)
        assert got is not None and got.stage == "training" and got.progress["val_loss"] == 1.5
        gate = {"passed": False, "reasons": ["worse"]}
        assert await store.finish_run(r.id, "rejected", gate=gate, candidate_version="v2")
        assert not await store.finish_run(r.id, "succeeded")  # the outcome is final
        await store.update_run(r.id, stage="training")  # ignored once finished
        done = await store.run(r.id)
        assert done is not None
        assert (done.status, done.stage, done.gate, done.candidate_version) == (
            "rejected",
            "done",
            gate,
            "v2",
        )
        assert done.finished_at is not None and not done.in_progress
        assert [x.id for x in await store.runs()] == [r.id]

    with_store(db_url, body)


def test_bad_values_are_usage_errors(db_url: str) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(UsageError, match="mode 'huge'"):
            await store.create_run("huge")
        r = await store.create_run("full")
        with pytest.raises(UsageError, match="status 'done'"):
            await store.finish_run(r.id, "done")
        with pytest.raises(UsageError, match="unknown fields"):
            await store.update_run(r.id, status="succeeded")

    with_store(db_url, body)


def test_rated_generations_and_votes_since(db_url: str) -> None:
    async def body(store: Store) -> None:
        for m in (1, 2, 3):
            await store.record_generation(
                NewGeneration(
                    channel_id=1, user_id=9, template="drake", boxes=["a", "b"], message_id=m
                )
            )
        before = utcnow() - timedelta(seconds=1)
        await store.set_vote(1, 100, 1)
        await store.set_vote(1, 101, 1)
        await store.set_vote(3, 100, -1)
        rated = await store.rated_generations()
        assert [(g.message_id, g.up, g.down) for g in rated] == [(1, 2, 0), (3, 0, 1)]
        assert await store.votes_since(None) == 3
        assert await store.votes_since(before) == 3
        assert await store.votes_since(utcnow() + timedelta(seconds=5)) == 0

    with_store(db_url, body)


def test_watch_run_reports_each_change_until_the_outcome(db_url: str) -> None:
    from retrain.requests import watch_run

    async def body(store: Store) -> None:
        r = await store.create_run("finetune", requested_by="alice")
        seen: list[str] = []

        async def on_change(text: str) -> None:
            # Each report moves the (simulated) worker one step on, like a real run would.
            seen.append(text)
            if len(seen) == 1:
                await store.claim_run(r.id, "host:1")
                await store.update_run(
                    r.id,
                    stage="training",
                    progress={"epoch": 1, "epochs": 2, "val_loss": 1.23456, "eta_s": 95},
                )
            elif len(seen) == 2:
                await store.update_run(r.id, candidate_version="v2", parent_version="v1")
                gate = {
                    "candidate": {"val_nats": 1.2, "up_ll": -1.0, "down_ll": -3.0},
                    "active": {"val_nats": 1.21, "up_ll": -1.5, "down_ll": -2.5},
                }
                await store.finish_run(r.id, "succeeded", gate=gate)

        final = await watch_run(store, r.id, on_change, interval=0.01)
        assert final.status == "succeeded"
        assert seen[0] == f"run #{r.id} (finetune) queued: waiting for a worker (`memebot worker`)"
        assert seen[1] == (
            f"run #{r.id} (finetune) running: stage training, epoch 1/2, val loss 1.2346, ETA 1m35s"
        )
        assert seen[2].startswith(f"run #{r.id} (finetune) succeeded: v2 is live (parent v1)")
        assert "val nats/char 1.2100 -> 1.2000; upvoted ll/char -1.5000 -> -1.0000" in seen[2]
        assert len(seen) == 3

    with_store(db_url, body)


def test_a_run_left_running_by_a_dead_worker_is_marked_failed(db_url: str) -> None:
    import socket
    import subprocess
    import sys

    from retrain.worker import recover_abandoned

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is free now: the "worker" is gone

    async def body(store: Store) -> None:
        r = await store.create_run("finetune")
        await store.claim_run(r.id, f"{socket.gethostname()}:{dead.pid}")
        await store.update_run(r.id, stage="training")
        other = f"elsewhere.example:{dead.pid}"  # another machine's worker: not ours to judge
        assert await recover_abandoned(store) == [r.id]
        failed = await store.run(r.id)
        assert failed is not None and failed.status == "failed"
        assert (
            failed.error
            == f"worker {socket.gethostname()}:{dead.pid} stopped during stage training"
        )
        r2 = await store.create_run("full")
        await store.claim_run(r2.id, other)
        assert await recover_abandoned(store) == []
        assert (await store.current_run()) is not None

    with_store(db_url, body)
