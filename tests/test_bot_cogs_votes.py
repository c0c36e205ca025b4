"""bot/cogs/votes.py with the real discord.py client against the Discord stand-in and a real
SQLite store (no engine: the memes are recorded as an earlier run would have): start-up
reconciliation skips a channel the bot can no longer read (403) and a deleted message (404)
with one log line each, and says it is done only once every channel's reads have ended."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.discord_standin import DiscordStandIn
from memebot.settings import Settings
from memebot.store import NewGeneration, Store

UP, DOWN = "👍", "👎"
OTHER_CHANNEL = 900010

Scenario = Callable[[DiscordStandIn, Settings, Store], Coroutine[Any, Any, None]]


def run(tmp_path: Path, scenario: Scenario, **over: Any) -> None:
    async def go() -> None:
        # Nothing listens there: these tests never ask the engine for a meme.
        s = bot_settings(tmp_path, engine_url="http://127.0.0.1:9", **over)
        async with standin() as api, migrated_store(s.database_url) as store:
            api.channel_ids.append(OTHER_CHANNEL)
            await scenario(api, s, store)
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())


async def earlier_meme(api: DiscordStandIn, store: Store, channel_id: int) -> tuple[int, int]:
    """A meme posted by an earlier run of the bot: its message and its generation id."""
    msg = api.post(channel_id, "> top\n> bottom")
    gen = await store.record_generation(
        NewGeneration(
            channel_id=channel_id,
            guild_id=api.guild_id,
            user_id=800100,
            template="drake",
            boxes=["top", "bottom"],
            message_id=msg.id,
        )
    )
    return msg.id, gen


def test_reconciliation_skips_an_unreadable_channel_and_a_deleted_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        readable = [await earlier_meme(api, store, OTHER_CHANNEL) for _ in range(6)]
        deleted = await earlier_meme(api, store, OTHER_CHANNEL)
        # The newest memes are in the forbidden channel: they are read (and refused) first,
        # while the readable channel's reads (two pages of reactors each) are still going.
        hidden = [await earlier_meme(api, store, api.channel_ids[0]) for _ in range(3)]
        for mid, _gen in [*hidden, deleted]:
            await store.set_vote(mid, 5, 1)  # stored before the bot went away
        for mid, _gen in readable:
            for uid in range(100, 230):  # more than one page (100 per GET)
                await api.react(mid, UP, uid, send=False)
            await api.react(mid, DOWN, 7, send=False)
        api.forbid_reads.add(api.channel_ids[0])
        api.messages.pop(deleted[0])  # a moderator deleted it while the bot was down
        with caplog.at_level(logging.INFO, logger="memebot"):
            async with running_bot(api, s, store) as bot:
                assert bot.reconcile_runs == 1
                # Every readable meme was reconciled before the bot said it was done.
                for _mid, gen in readable:
                    votes = await store.votes(gen)
                    assert votes == {7: -1} | {u: 1 for u in range(100, 230)}
                for _mid, gen in hidden:
                    assert await store.votes(gen) == {5: 1}, "kept: Discord did not say"
        assert await store.votes(deleted[1]) == {5: 1}
        ours = [r for r in caplog.records if r.name.startswith("memebot")]
        assert not [r for r in ours if r.levelno >= logging.ERROR], "never fatal"
        (warning,) = [r for r in ours if r.levelno == logging.WARNING]
        text = warning.getMessage()
        assert str(api.channel_ids[0]) in text and "403" in text and "Read Message History" in text
        assert warning.exc_info is None and "\n" not in text  # one line, no traceback
        (summary,) = [r for r in ours if "reconciled votes on" in r.getMessage()]
        assert "10 recent memes" in summary.getMessage()
        assert "3 in 1 unreadable channels" in summary.getMessage()
        # The forbidden channel was asked once, not once per meme.
        forbidden = [r for r in api.requests if f"/channels/{api.channel_ids[0]}/" in r]
        assert len(forbidden) == 1, forbidden

    run(tmp_path, scenario)


def test_a_new_session_during_a_pass_gets_its_own_pass(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        mid, gen = await earlier_meme(api, store, OTHER_CHANNEL)
        reads = f"GET /channels/{OTHER_CHANNEL}/messages/{mid}/reactions/"
        async with running_bot(api, s, store) as bot:
            await api.react(mid, UP, 9, send=False)
            seen = sum(r.startswith(reads) for r in api.requests)
            await api.invalidate_session()  # events in the gap are lost
            # The second pass is reading when the next session begins: its reading may be
            # older than that session's gap, so a third pass follows it.
            await api.wait_until(lambda: sum(r.startswith(reads) for r in api.requests) > seen)
            await api.react(mid, DOWN, 10, send=False)
            await api.wait_until(lambda: api.identifies == 2)
            await api.invalidate_session()
            await asyncio.wait_for(bot.wait_reconciled(3), 30)
            assert api.identifies == 3
            assert await store.votes(gen) == {9: 1, 10: -1}

    run(tmp_path, scenario)
