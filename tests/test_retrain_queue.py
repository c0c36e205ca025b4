"""The job queue (huey) with two workers racing: every job is taken exactly once, on the
embedded SQLite file, the real PostgreSQL and the real Redis; a queued run is claimed once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.databases import throwaway_postgres, throwaway_redis_queue
from memebot.errors import UsageError
from memebot.store import Store, upgrade
from retrain.queue import QUEUE_NAME, RunQueue, make_huey

KINDS = ["sqlite", "postgresql", "redis"]


@contextmanager
def queue_url(kind: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(queue URL, queue name, store URL) for a queue of `kind`; the store is on the same
    database, or a SQLite file beside a Redis queue (the deployment the docs describe)."""
    if kind == "sqlite":
        sqlite_store = f"sqlite+aiosqlite:///{tmp_path / 'db.db'}"
        yield f"sqlite:///{tmp_path / 'queue.db'}", QUEUE_NAME, sqlite_store
        return
    if kind == "redis":
        with throwaway_redis_queue() as (url, name):
            yield url, name, f"sqlite+aiosqlite:///{tmp_path / 'db.db'}"
        return
    with throwaway_postgres() as url:
        yield url.replace("postgresql+asyncpg://", "postgresql://"), QUEUE_NAME, url


def race(url: str, qname: str, execute: Callable[[int, str], None], workers: int = 2) -> None:
    """`workers` threads, each with its own queue connection, drain the queue at once."""
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        q = RunQueue(url, execute=lambda rid: execute(rid, name), name=qname)
        try:
            barrier.wait()
            q.work_until_empty()
        except Exception as e:  # noqa: BLE001 (a thread: re-raised by the test below)
            errors.append(e)
        finally:
            q.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("kind", KINDS)
def test_two_workers_take_every_job_exactly_once(kind: str, tmp_path: Path) -> None:
    with queue_url(kind, tmp_path) as (url, qname, _db):
        producer = RunQueue(url, name=qname)
        for i in range(60):
            producer.enqueue(i)
        assert producer.pending() == 60
        taken: list[tuple[int, str]] = []
        lock = threading.Lock()

        def execute(rid: int, name: str) -> None:
            with lock:
                taken.append((rid, name))

        race(url, qname, execute)
        assert sorted(rid for rid, _ in taken) == list(range(60))
        assert producer.pending() == 0
        producer.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_queued_run_is_claimed_exactly_once(kind: str, tmp_path: Path) -> None:
    with queue_url(kind, tmp_path) as (url, qname, db):
        asyncio.run(upgrade(db))

        async def create() -> int:
            async with Store.from_url(db) as store:
                return (await store.create_run("finetune", requested_by="alice")).id

        run_id = asyncio.run(create())
        producer = RunQueue(url, name=qname)
        producer.enqueue(run_id)
        # A duplicate message (a retried enqueue) must not run the run twice either.
        producer.enqueue(run_id)
        claims: list[str] = []
        executions: list[str] = []
        lock = threading.Lock()

        def execute(rid: int, name: str) -> None:
            async def claim() -> bool:
                async with Store.from_url(db) as store:
                    return await store.claim_run(rid, name) is not None

            with lock:
                executions.append(name)
            if asyncio.run(claim()):
                with lock:
                    claims.append(name)

        race(url, qname, execute)
        assert len(executions) == 2 and len(claims) == 1
        producer.close()

        async def check() -> None:
            async with Store.from_url(db) as store:
                r = await store.run(run_id)
                assert r is not None and r.status == "running" and r.worker == claims[0]

        asyncio.run(check())


def test_queue_url_must_be_known() -> None:
    with pytest.raises(UsageError, match="MEMEBOT_QUEUE_URL"):
        make_huey("mysql://x")


def test_what_the_bot_imports_pulls_in_no_training(tmp_path: Path) -> None:
    """The bot enqueues and reads runs (retrain.requests, the queue, the store); the worker's
    training side (training/, TensorFlow, the language detector) stays out of its process."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "import retrain.requests, retrain.queue, retrain.gate, retrain.curation, memebot.store\n"
        "import retrain.worker, bot.cogs.admin\n"
        "heavy = ('training', 'tensorflow', 'keras', 'lingua')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
