"""The job queue for retraining runs: huey (https://huey.readthedocs.io), not a hand-written one.

The queue carries only a run id; the run's record (status, progress, outcome) is the store's
`retrain_runs` row, so the bot shows progress from the database whatever the queue backend.

  sqlite:///var/retrain-queue.db   the embedded default: a file, no server (huey SqliteHuey)
  postgresql://user@host/db        huey's SQL storage (peewee + psycopg2): a worker on another
                                   machine takes jobs with SELECT ... FOR UPDATE SKIP LOCKED
  redis://host:6379/0              huey RedisHuey (needs the client: pip install 'memebot[redis]')

A job is taken once: SQLite dequeues inside BEGIN EXCLUSIVE (select + delete), PostgreSQL with
FOR UPDATE SKIP LOCKED + delete (the delete's row count decides), Redis with an atomic pop.
The worker then claims the run in the store (queued -> running), a second guard.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey

from memebot.errors import UsageError
from memebot.logs import get_logger

log = get_logger(__name__)

QUEUE_NAME = "memebot-retrain"
TASK_NAME = "retrain.run"


def make_huey(url: str, name: str = QUEUE_NAME) -> Huey:
    """A huey instance on `url` (see the module docstring); its tables are created on first use.
    `name` keys the queue inside the storage (tests use their own, beside a live queue)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), results=False, utc=True)
    if url.startswith("postgresql://"):
        from huey.contrib.sql_huey import SqlHuey

        return SqlHuey(name, database=url, results=False, utc=True)
    if url.startswith(("redis://", "rediss://")):
        # huey raises its ConfigurationError (with a traceback) when the client is missing.
        if importlib.util.find_spec("redis") is None:  # pragma: no cover - an optional extra
            raise UsageError(
                "MEMEBOT_QUEUE_URL redis://...: install the Redis client first "
                "(pip install 'memebot[redis]')"
            )
        return RedisHuey(name, url=url, results=False, utc=True)
    raise UsageError("MEMEBOT_QUEUE_URL: use sqlite:///, postgresql:// or redis://")


class RunQueue:
    """Enqueue run ids; a worker executes them with `execute(run_id)`.

    The bot and `memebot retrain` construct it without `execute` (they only enqueue).
    """

    def __init__(
        self, url: str, execute: Callable[[int], None] | None = None, *, name: str = QUEUE_NAME
    ) -> None:
        self.url = url
        self.huey = make_huey(url, name)
        self._execute = execute

        def run_task(run_id: int) -> None:
            if self._execute is None:
                raise RuntimeError("this RunQueue only enqueues (no execute function given)")
            self._execute(run_id)

        # retries=0: a failed run is recorded as failed in the store, never silently re-run.
        self._task = self.huey.task(name=TASK_NAME, retries=0)(run_task)

    def enqueue(self, run_id: int) -> None:
        self._task(run_id)

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def work_once(self) -> bool:
        """Takes one job, if any, and runs it here; False when the queue was empty."""
        task = self.huey.dequeue()
        if task is None:
            return False
        self.huey.execute(task)
        return True

    def work_until_empty(self) -> int:
        n = 0
        while self.work_once():
            n += 1
        return n

    def serve(self) -> None:
        """Runs jobs forever, one at a time (huey's consumer: signals, polling back-off)."""
        consumer = self.huey.create_consumer(workers=1, worker_type="thread", periodic=False)
        consumer.run()

    def close(self) -> None:
        storage = self.huey.storage
        if hasattr(storage, "close"):
            storage.close()
