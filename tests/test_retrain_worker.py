"""The retraining loop on small real models: ratings in a real store -> a run through the real
queue -> `memebot train`/`eval` subprocesses -> gate -> hot reload of a real engine over HTTP;
a killed run, a corrupt candidate, rollback, promotion under load."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from engine.decoding.loader import load_model
from harness.disks import small_disk
from harness.engine import running_engine
from harness.factories import scratch_env, train_tiny
from memebot.settings import Settings
from memebot.store import NewGeneration, Store, upgrade
from retrain.promotion import ensure_active, promote, rollback
from retrain.queue import RunQueue
from retrain.requests import NothingToTrain, request_run
from retrain.worker import CandidateUnusable, Subprocess, execute_run, gate_candidate

pytestmark = pytest.mark.slow

SUBJECTS = ["my dog", "the teacher", "my mom", "a cat", "my boss", "my friend", "dad"]


def loop_settings(tmp_path: Path, data: Path, model: Path, engine_url: str) -> Settings:
    env = scratch_env(tmp_path) | {
        "MEMEBOT_DATA_DIR": str(data),
        "MEMEBOT_MODEL": str(model),
        "MEMEBOT_ENGINE_URLS": engine_url,
        "MEMEBOT_RETRAIN_EPOCHS": "2",
        "MEMEBOT_RETRAIN_STEPS": "25",
        "MEMEBOT_RETRAIN_LR": "0.003",
        "MEMEBOT_GATE_VAL_LIMIT": "200",
    }
    return Settings.from_env(env)


def subprocess_env(s: Settings) -> dict[str, str]:
    return os.environ | {
        "MEMEBOT_CACHE_DIR": str(s.cache_dir),
        "MEMEBOT_DATA_DIR": str(s.data_dir),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


@asynccontextmanager
async def engine(model: Path, s: Settings) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """harness.engine's in-process engine, as the (client session, URL) these tests use."""
    async with running_engine(model, s) as eng:
        yield eng.http, eng.url


async def served_version(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(f"{url}/readyz") as r:
        return str((await r.json())["model_version"])


@pytest.fixture(scope="module")
def converged_model(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """The active model of these tests: trained until val stops improving, like a served
    model (an undertrained one gets better at everything when fine-tuned, downvoted too)."""
    out = tmp_path_factory.mktemp("converged") / "model"
    return train_tiny(tiny_data, out, epochs=30, learning_rate=5e-3, patience=2)


async def rate(store: Store, *, seed: int = 0) -> None:
    """A community that likes pizza: 80 pizza captions voted up; 20 in the old style of the
    base corpus voted down."""
    rng = random.Random(seed)
    message = 1000 * (seed + 1)
    for i in range(100):
        who = rng.choice(SUBJECTS)
        if i < 80:
            boxes = [f"when {who} eats pizza", f"pizza number {i} again"]
        else:
            boxes = [f"when {who} hates the wifi", f"{who} on a monday"]
        message += 1
        await store.record_generation(
            NewGeneration(
                channel_id=1, user_id=9, template="two-buttons", boxes=boxes, message_id=message
            )
        )
        for user in range(3):
            await store.set_vote(message, 100 + user, 1 if i < 80 else -1)


def test_run_through_the_queue_promotes_a_better_model(
    tiny_data: Path, converged_model: Path, tmp_path: Path
) -> None:
    tiny_model = converged_model

    async def go() -> None:
        base = loop_settings(tmp_path, tiny_data, tiny_model, "http://127.0.0.1:1")
        async with engine(tiny_model, base) as (http, url):
            s = base.model_copy(update={"replica_urls": (url,)})
            await upgrade(s.database_url)
            store = Store.from_url(s.database_url)
            queue = RunQueue(
                s.queue_url,
                execute=lambda rid: execute_run(rid, s, proc=Subprocess(env=subprocess_env(s))),
            )
            try:
                with pytest.raises(NothingToTrain, match="no new ratings"):
                    await request_run(store, queue, requested_by="alice")
                await rate(store)
                run = await request_run(store, queue, requested_by="alice", guild_id=5)
                assert queue.pending() == 1
                old = await served_version(http, url)
                assert await asyncio.to_thread(queue.work_once)
                done = await store.run(run.id)
                assert done is not None
                assert done.status == "succeeded", (done.error, done.gate)
                gate = done.gate
                assert gate["passed"] and gate["counts"]["train"] > 40
                assert gate["candidate"]["up_ll"] > gate["active"]["up_ll"]
                assert gate["candidate"]["val_nats"] <= gate["active"]["val_nats"] + 0.02
                # Live without a restart, recorded with its parent and who asked.
                assert await served_version(http, url) == done.candidate_version != old
                active = await store.active_model_version()
                assert active is not None and active.version == done.candidate_version
                assert active.parent == old and active.created_by == "alice"
                assert (s.models_dir / "active").resolve() == Path(active.path)
                # Nothing new rated since: told so, nothing queued.
                with pytest.raises(NothingToTrain):
                    await request_run(store, queue, requested_by="bob")
                assert queue.pending() == 0
                # Rollback: gate-free back to the parent, engines and store together.
                back, results = await rollback(store, s)
                assert back.version == old and [r.status for r in results] == ["ok"]
                assert await served_version(http, url) == old
                assert (s.models_dir / "active").resolve() == tiny_model.resolve()
            finally:
                queue.close()
                await store.close()

    asyncio.run(go())


def test_gate_rejects_a_worse_and_a_corrupt_candidate(
    tiny_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    s = loop_settings(tmp_path, tiny_data, tiny_model, "http://127.0.0.1:1")
    proc = Subprocess(env=subprocess_env(s))
    up, down = tmp_path / "up.jsonl", tmp_path / "down.jsonl"
    up.write_text(json.dumps({"template": "two-buttons", "boxes": ["when my dog eats pizza", "x"]}))
    down.write_text("")
    # Barely trained: worse on the base val split by far more than the tolerance.
    worse = train_tiny(tiny_data, tmp_path / "worse", epochs=1, learning_rate=1e-4)
    result = gate_candidate(proc, s, worse, tiny_model, up, down)
    assert not result.passed
    assert any("val nats/char" in r for r in result.reasons), result.reasons
    assert result.candidate is not None and result.active is not None
    assert result.candidate.val_nats > result.active.val_nats + 0.02

    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_model, corrupt)
    (corrupt / "model.keras").write_bytes(b"not a model")
    with pytest.raises(CandidateUnusable, match="memebot eval failed"):
        gate_candidate(proc, s, corrupt, tiny_model, up, down)


def test_killed_training_fails_the_run_and_leaves_the_model(
    tiny_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    async def go() -> None:
        base = loop_settings(tmp_path, tiny_data, tiny_model, "http://127.0.0.1:1")
        async with engine(tiny_model, base) as (http, url):
            s = base.model_copy(update={"replica_urls": (url,)})
            await upgrade(s.database_url)
            store = Store.from_url(s.database_url)
            try:
                await rate(store)
                before = await served_version(http, url)

                def kill_training(p: subprocess.Popen[str]) -> None:
                    if "train" in p.args:  # type: ignore[operator]
                        p.kill()

                run = await store.create_run("finetune", requested_by="alice")
                proc = Subprocess(env=subprocess_env(s), on_start=kill_training)
                await asyncio.to_thread(execute_run, run.id, s, proc=proc)
                done = await store.run(run.id)
                assert done is not None and done.status == "failed"
                assert done.error is not None and "killed by signal 9" in done.error
                assert await served_version(http, url) == before
                active = await store.active_model_version()
                assert active is not None and active.version == before
                assert await store.current_run() is None  # the next /retrain may start
            finally:
                await store.close()

    asyncio.run(go())


def test_full_disk_fails_the_run_and_leaves_the_model(
    tiny_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """MEMEBOT_MODELS_DIR on a filesystem that fills up while `memebot train` writes the
    candidate (its checkpoints are larger than the room left after the curated files): the run
    is recorded failed with the disk's error, the engine keeps serving the active model, the
    store's active version and models/active are unchanged, and no candidate artifact exists."""
    model_bytes = sum(f.stat().st_size for f in tiny_model.iterdir() if f.is_file())
    # Room for the curated files and the artifact's small JSON files, not for the weights and
    # checkpoints (Keras writes weights + optimizer state, ~3x the weights).
    room = model_bytes // 2

    async def go(models: Path) -> None:
        base = loop_settings(tmp_path, tiny_data, tiny_model, "http://127.0.0.1:1")
        async with engine(tiny_model, base) as (http, url):
            s = base.model_copy(update={"replica_urls": (url,), "models_dir": models})
            await upgrade(s.database_url)
            store = Store.from_url(s.database_url)
            try:
                await rate(store)
                before = await served_version(http, url)
                run = await store.create_run("finetune", requested_by="alice")
                proc = Subprocess(env=subprocess_env(s))
                await asyncio.to_thread(execute_run, run.id, s, proc=proc)
                done = await store.run(run.id)
                assert done is not None
                assert done.status == "failed", (done.status, done.error)
                assert done.error is not None
                # One line from `memebot train` (DiskSpaceGuard), naming the place.
                assert done.error.startswith(
                    "memebot train failed: memebot: error: no space left on device for "
                ), done.error
                assert str(models) in done.error and "nothing was saved" in done.error
                assert await served_version(http, url) == before
                active = await store.active_model_version()
                assert active is not None and active.version == before
                assert not (models / "active").exists()  # never pointed at a candidate
                assert not (models / f"run-{run.id}-finetune").exists()
                assert await store.current_run() is None  # the next /retrain may start
            finally:
                await store.close()

    with small_disk(tmp_path / "models", room) as models:
        asyncio.run(go(models))


def test_promotion_under_load_and_a_refusing_or_missing_engine(
    tiny_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(tiny_model, candidate)
    meta = json.loads((candidate / "meta.json").read_text())
    meta["version"] = "char-gru-candidate"
    (candidate / "meta.json").write_text(json.dumps(meta))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.keras").write_bytes(b"garbage")

    async def go() -> None:
        base = loop_settings(tmp_path, tiny_data, tiny_model, "http://127.0.0.1:1")
        async with engine(tiny_model, base) as (http, url):
            s = base.model_copy(update={"replica_urls": (url,)})
            await upgrade(s.database_url)
            store = Store.from_url(s.database_url)
            try:
                active = await ensure_active(store, s)
                run = await store.create_run("finetune", requested_by="carol")
                # A corrupt candidate: the engine answers 422 and keeps serving.
                why = await promote(store, s, broken, "char-gru-broken", active, run, {})
                assert why is not None and "refused" in why
                assert await served_version(http, url) == active.version

                async def one(i: int) -> int:
                    r = await http.post(
                        f"{url}/v1/memes", json={"template": "y-u-no", "image": False, "seed": i}
                    )
                    return r.status

                load = [asyncio.ensure_future(one(i)) for i in range(60)]
                await asyncio.sleep(0)
                assert (
                    await promote(store, s, candidate, "char-gru-candidate", active, run, {})
                    is None
                )
                load += [asyncio.ensure_future(one(i)) for i in range(60, 80)]
                assert set(await asyncio.gather(*load)) == {200}  # no request lost
                assert await served_version(http, url) == "char-gru-candidate"

                # A replica that is down (restarting) is not a failure: it starts from
                # models/active, which already points at the new version.
                down = s.model_copy(update={"replica_urls": (url, "http://127.0.0.1:1")})
                again = tmp_path / "again"
                shutil.copytree(candidate, again)
                meta["version"] = "char-gru-again"
                (again / "meta.json").write_text(json.dumps(meta))
                active2 = await store.active_model_version()
                assert active2 is not None
                assert await promote(store, down, again, "char-gru-again", active2, run, {}) is None
                assert (s.models_dir / "active").resolve() == again.resolve()
                assert load_model(s.models_dir / "active").version == "char-gru-again"
            finally:
                await store.close()

    asyncio.run(go())
