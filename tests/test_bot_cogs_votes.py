"""bot/cogs/votes.py with the real discord.py client against the Discord stand-in and a real
SQLite store (no engine: the memes are recorded as an earlier run would have): start-up
reconciliation skips a channel the bot can no longer read (403) with one log line, marks a
message Discord no longer has (404) deleted, waits out Discord's rate limits, and says it is
done only once every channel's reads have ended; message deletes (single and bulk) take memes
out of /top and /stats, and reaction clears (all, or one emoji) retract those votes, through
the gateway intents the bot asks for (no privileged one)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import discord
import pytest

from bot import app
from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.discord_standin import (
    GUILD_MESSAGE_REACTIONS,
    GUILD_MESSAGES,
    PRIVILEGED_INTENTS,
    DiscordStandIn,
    RateLimits,
)
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


async def earlier_meme(
    api: DiscordStandIn, store: Store, channel_id: int, top: str = "top"
) -> tuple[int, int]:
    """A meme posted by an earlier run of the bot: its message and its generation id."""
    msg = api.post(channel_id, f"> {top}\n> bottom")
    gen = await store.record_generation(
        NewGeneration(
            channel_id=channel_id,
            guild_id=api.guild_id,
            user_id=800100,
            template="drake",
            boxes=[top, "bottom"],
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
        lost = await earlier_meme(api, store, 900_099)  # a channel deleted since: 404
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
        gone = await store.generation(deleted[1])
        assert gone is not None and gone.deleted_at is not None, "missed delete caught up"
        ours = [r for r in caplog.records if r.name.startswith("memebot")]
        assert not [r for r in ours if r.levelno >= logging.ERROR], "never fatal"
        warnings = [r for r in ours if r.levelno == logging.WARNING]
        assert len(warnings) == 2, [w.getMessage() for w in warnings]  # one per channel
        text = next(w.getMessage() for w in warnings if str(api.channel_ids[0]) in w.getMessage())
        assert "403" in text and "Read Message History" in text
        assert "404 Unknown Channel" in next(
            w.getMessage() for w in warnings if "900099" in w.getMessage()
        )
        assert all(w.exc_info is None and "\n" not in w.getMessage() for w in warnings)
        kept = await store.generation(lost[1])
        assert kept is not None and kept.deleted_at is None, "a lost channel is no delete"
        (summary,) = [r for r in ours if "reconciled votes on" in r.getMessage()]
        assert "11 recent memes" in summary.getMessage()
        assert "4 in 2 unreadable channels" in summary.getMessage()
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


def test_deletes_leave_top_and_stats_and_clears_retract_votes(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        channel = api.channel_ids[0]
        memes = [await earlier_meme(api, store, channel, f"caption {i}") for i in range(5)]
        async with running_bot(api, s, store) as bot:
            (intents,) = api.identify_intents
            assert intents & PRIVILEGED_INTENTS == 0
            assert intents & GUILD_MESSAGES and intents & GUILD_MESSAGE_REACTIONS
            book = bot.vote_book()
            for mid, _gen in memes:
                await api.react(mid, UP, 1)
                await api.react(mid, UP, 2)
                await api.react(mid, DOWN, 3)
            await book.wait_handled(15)
            top = await api.answered(await api.invoke("top"))
            assert all(f"caption {i}" in top.replies[0].content for i in range(5))

            await api.delete_message(memes[0][0])
            await api.bulk_delete([memes[1][0], memes[2][0]])
            await api.clear_reactions(memes[3][0], UP)  # every 👍: two votes
            await api.clear_reactions(memes[4][0])  # every reaction
            await book.wait_handled(19)
            for _mid, gen in memes[:3]:
                info = await store.generation(gen)
                assert info is not None and info.deleted_at is not None
            assert await store.votes(memes[3][1]) == {3: -1}
            assert await store.votes(memes[4][1]) == {}
            stats = await store.stats(api.guild_id)
            assert (stats.generations, stats.up, stats.down) == (2, 0, 1)

            top = await api.answered(await api.invoke("top"))
            text = top.replies[0].content
            assert "caption 3" in text
            assert not any(f"caption {i}" in text for i in (0, 1, 2, 4)), text
            shown = await api.answered(await api.invoke("stats"))
            assert "Memes made: 2" in shown.replies[0].content
            # A reaction on a deleted meme (a late event) is no vote.
            await api.react(memes[0][0], UP, 9, send=False)
            assert not await book.reaction(message_id=memes[0][0], user_id=9, emoji=UP, added=True)

    run(tmp_path, scenario)


def test_a_session_without_the_intent_gets_no_delete_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in is honest about intents: the delete listener works only because the bot
    asks for guild messages (a session without that intent never hears of deletes)."""

    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        mid, gen = await earlier_meme(api, store, api.channel_ids[0])
        async with running_bot(api, s, store) as bot:
            await api.delete_message(mid)
            await api.react(mid, UP, 1)  # a later event that does arrive
            await bot.vote_book().wait_handled(1)
            assert bot.vote_book().handled == 1
        info = await store.generation(gen)
        assert info is not None and info.deleted_at is None

    without = discord.Intents(**dict(app.INTENTS))
    without.guild_messages = False
    monkeypatch.setattr(app, "INTENTS", without)
    run(tmp_path, scenario)


def test_reconciliation_reads_reactor_lists_only_where_counts_changed(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        memes = [await earlier_meme(api, store, OTHER_CHANNEL, f"c{i}") for i in range(4)]
        for mid, _gen in memes:
            await api.react(mid, UP, int(api.bot_user["id"]), send=False)  # the bot's own
            await api.react(mid, DOWN, int(api.bot_user["id"]), send=False)
            await api.react(mid, UP, 1, send=False)
            await store.set_vote(mid, 1, 1)  # stored as Discord shows it
        changed, changed_gen = memes[2]
        await api.react(changed, DOWN, 2, send=False)  # while the bot was away
        async with running_bot(api, s, store):
            pass
        lists = [r for r in api.requests if "/reactions/" in r and r.startswith("GET")]
        assert lists and all(f"/messages/{changed}/" in r for r in lists), lists
        reads = [r for r in api.requests if r.startswith(f"GET /channels/{OTHER_CHANNEL}/")]
        assert len(reads) == len(memes) + len(lists)  # one message read each, lists once
        assert await store.votes(changed_gen) == {1: 1, 2: -1}

    run(tmp_path, scenario)


def test_reconciliation_under_discords_rate_limits_waits_them_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Discord's buckets on, and a global limit the start-up reads run into: every 429 is
    waited out (discord.py's pacing), no meme is skipped or fails, and reactor lists are still
    read only where the counts changed."""

    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        memes = [await earlier_meme(api, store, OTHER_CHANNEL, f"c{i}") for i in range(12)]
        changed = memes[:8]
        for i, (mid, _gen) in enumerate(memes):
            await api.react(mid, UP, 1, send=False)
            await store.set_vote(mid, 1, 1)  # stored as Discord shows it
            if i < len(changed):  # a 👎 added while the bot was away
                await api.react(mid, DOWN, 100 + i, send=False)
        api.rate_limits = limits = RateLimits(global_per_s=5)
        with caplog.at_level(logging.INFO, logger="memebot"):
            async with running_bot(api, s, store) as bot:
                assert bot.reconcile_runs == 1
        for i, (_mid, gen) in enumerate(changed):
            assert await store.votes(gen) == {1: 1, 100 + i: -1}
        for _mid, gen in memes[8:]:
            assert await store.votes(gen) == {1: 1}
        assert any(is_global for _route, is_global in limits.limited), limits.limited
        lists = {r.split("/")[4] for r in api.requests if "/reactions/" in r}
        assert lists == {str(mid) for mid, _gen in changed}
        ours = [r for r in caplog.records if r.name.startswith("memebot")]
        assert not [r for r in ours if r.levelno >= logging.WARNING], "nothing skipped"
        (summary,) = [r for r in ours if "reconciled votes on" in r.getMessage()]
        assert "8 changes, 4 unchanged" in summary.getMessage()
        assert "0 failed" in summary.getMessage()

    run(tmp_path, scenario)
