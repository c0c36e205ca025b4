"""A server's taste-retrain budget (retrain/cooldown.py): one start per cooldown per server,
from this process's own starts and from the runs the store recorded (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from harness.databases import with_store
from memebot.errors import UsageError
from memebot.settings import Settings
from memebot.store import Store
from retrain.cooldown import CoolingDown, TasteCooldown, last_start, remaining, wait_text

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_setting_default_and_zero() -> None:
    assert Settings.from_env({}).taste_cooldown == 600
    assert Settings.from_env({"MEMEBOT_TASTE_COOLDOWN": "0"}).taste_cooldown == 0
    with pytest.raises(UsageError, match="MEMEBOT_TASTE_COOLDOWN"):
        Settings.from_env({"MEMEBOT_TASTE_COOLDOWN": "-1"})


def test_remaining_and_wait_text() -> None:
    assert remaining(None, T0, 600) == 0
    assert remaining(T0, T0 + timedelta(seconds=100), 600) == 500
    assert remaining(T0, T0 + timedelta(seconds=700), 600) == 0
    assert remaining(T0, T0, 0) == 0  # no cooldown
    assert wait_text(0.2) == "1 s" and wait_text(45) == "45 s"
    assert wait_text(570) == "9 min 30 s" and wait_text(600) == "10 min"


def test_one_start_per_cooldown_per_server() -> None:
    async def go() -> None:
        clock = Clock()
        cd = TasteCooldown(600, clock=clock)
        assert await cd.begin(1) == T0
        await cd.begin(2)  # another server has its own budget
        clock.advance(30)
        with pytest.raises(CoolingDown, match="try again in 9 min 30 s") as e:
            await cd.begin(1)
        assert e.value.retry_after == 570
        assert await cd.remaining(1) == 570
        clock.advance(570)
        assert await cd.remaining(1) == 0
        assert await cd.begin(1) == T0 + timedelta(seconds=600)

    asyncio.run(go())


def test_two_admins_at_once_one_start_and_undo_gives_it_back() -> None:
    async def go() -> None:
        clock = Clock()
        seen = 0

        async def stored(guild_id: int) -> datetime | None:
            nonlocal seen
            seen += 1
            await asyncio.sleep(0)  # a store read: the other request runs meanwhile
            return None

        cd = TasteCooldown(600, stored, clock=clock)
        results = await asyncio.gather(*(cd.begin(7) for _ in range(5)), return_exceptions=True)
        assert sum(isinstance(r, datetime) for r in results) == 1
        assert sum(isinstance(r, CoolingDown) for r in results) == 4 and seen == 5
        cd.undo(7)  # the run was refused after all (too few votes): the budget is back
        assert await cd.remaining(7) == 0
        await cd.begin(7)
        clock.advance(601)
        await cd.begin(7)
        cd.undo(7)  # back to the earlier start, not to none
        assert await cd.remaining(7) == 0
        clock.advance(-100)
        assert await cd.remaining(7) == 99  # 501 s after the earlier start

    asyncio.run(go())


def test_the_stores_runs_count_after_a_restart(db_url: str) -> None:
    async def body(store: Store) -> None:
        async def stored(guild_id: int) -> datetime | None:
            return last_start(r for r in await store.runs(limit=50) if r.guild_id == guild_id)

        refused = await store.create_run("finetune", guild_id=5)
        await store.finish_run(refused.id, "failed", error="could not enqueue: queue down")
        assert await TasteCooldown(600, stored).remaining(5) == 0  # never ran: no cost
        ran = await store.create_run("finetune", guild_id=5)
        assert await store.claim_run(ran.id, "host:1") is not None
        await store.finish_run(ran.id, "succeeded")
        fresh = TasteCooldown(600, stored)  # a new process: nothing in memory
        with pytest.raises(CoolingDown):
            await fresh.begin(5)
        assert 590 < await fresh.remaining(5) <= 600
        assert await fresh.remaining(6) == 0  # another server
        assert await TasteCooldown(0, stored).remaining(5) == 0

    with_store(db_url, body)
