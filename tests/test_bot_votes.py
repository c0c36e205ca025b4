"""bot/votes.py without Discord: which reactions count, and a vote write that fails (a database
error) is retried once, then left for reconciliation with an error in the log. The store is
the real one on SQLite; only the failures are injected, by a store whose first writes raise the
error SQLAlchemy raises for a locked database."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from bot.votes import VoteBook, VoteEmoji
from memebot.store import NewGeneration, Store, upgrade

BOT = 700001


class FailingStore(Store):
    """The real store, whose next `failures` vote writes raise OperationalError first."""

    failures = 0

    async def set_vote(self, message_id: int, user_id: int, value: int) -> bool:
        if self.failures:
            self.failures -= 1
            raise OperationalError("UPDATE votes ...", {}, Exception("database is locked"))
        return await super().set_vote(message_id, user_id, value)


async def book(tmp_path: Path) -> tuple[VoteBook, FailingStore, int]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}"
    await upgrade(url)
    store = FailingStore.from_url(url)
    assert isinstance(store, FailingStore)
    gen = await store.record_generation(
        NewGeneration(channel_id=1, user_id=2, template="drake", boxes=["a", "b"], message_id=55)
    )
    return VoteBook(store, VoteEmoji.from_settings("👍", "👎"), bot_user_id=BOT), store, gen


@pytest.mark.parametrize(
    ("emoji", "user", "counted"),
    [("👍", 10, 1), ("👎", 10, -1), ("😂", 10, None), ("👍", BOT, None)],
)
def test_which_reactions_count(tmp_path: Path, emoji: str, user: int, counted: int | None) -> None:
    async def go() -> None:
        votes, store, gen = await book(tmp_path)
        try:
            changed = await votes.reaction(message_id=55, user_id=user, emoji=emoji, added=True)
            assert changed is (counted is not None)
            assert await store.votes(gen) == ({user: counted} if counted else {})
        finally:
            await store.close()

    asyncio.run(go())


def test_a_failed_vote_write_is_retried_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        votes, store, gen = await book(tmp_path)
        try:
            store.failures = 1
            with caplog.at_level(logging.WARNING, logger="memebot.bot.votes"):
                assert await votes.reaction(message_id=55, user_id=10, emoji="👍", added=True)
            assert await store.votes(gen) == {10: 1}  # the second attempt stored it
            (rec,) = [
                r
                for r in caplog.records
                if r.name == "memebot.bot.votes" and r.levelno >= logging.WARNING
            ]
            assert rec.levelno == logging.WARNING and "retrying" in rec.getMessage()
            assert "database is locked" in rec.getMessage()
        finally:
            await store.close()

    asyncio.run(go())


def test_two_failed_writes_leave_the_vote_for_reconciliation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> dict[int, int]:
        votes, store, gen = await book(tmp_path)
        try:
            store.failures = 2
            with caplog.at_level(logging.WARNING, logger="memebot.bot.votes"):
                assert not await votes.reaction(message_id=55, user_id=10, emoji="👍", added=True)
            assert await store.votes(gen) == {}
            ours = [
                r
                for r in caplog.records
                if r.name == "memebot.bot.votes" and r.levelno >= logging.WARNING
            ]
            assert [r.levelno for r in ours] == [logging.WARNING, logging.ERROR]
            assert "left for the next reconciliation" in ours[-1].getMessage()
            # What reconciliation does once the database answers again: Discord's reactions win.
            await store.reconcile(gen, up={10}, down=set())
            return await store.votes(gen)
        finally:
            await store.close()

    assert asyncio.run(go()) == {10: 1}
