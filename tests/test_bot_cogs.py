"""Every command against the real discord.py client and the Discord stand-in, with a hung
engine and a database whose tables another transaction holds locked (real PostgreSQL): each
interaction is acknowledged within Discord's 3 s, and each ends with an answer once the
database is free again (the engine's timeout ends the engine's part)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.databases import throwaway_postgres
from harness.discord_standin import Interaction
from harness.slow import hung_engine, locked_tables

pytestmark = pytest.mark.slow
DEADLINE = 3.0  # seconds Discord waits for an interaction's first response
AGAIN = "memebot:again:1"  # the 🔁 button of generation 1

# (command, options, invoked by an admin): every slash command that does I/O.
COMMANDS: list[tuple[str, dict[str, Any], bool]] = [
    ("meme", {"template": "two-buttons"}, False),
    ("templates", {"query": "two"}, False),
    ("top", {"period": "all"}, False),
    ("stats", {}, False),
    ("forget-me", {}, False),
    ("settings", {"content_filter": "strict"}, True),
    ("model", {}, True),
    ("retrain", {"base": True}, True),
]


def test_every_command_answers_in_time_with_a_hung_engine_and_a_locked_database(
    tmp_path: Path,
) -> None:
    with throwaway_postgres() as url:
        asyncio.run(scenario(tmp_path, url))


async def scenario(tmp_path: Path, url: str) -> None:
    async with hung_engine() as engine, standin() as api, migrated_store(url) as store:
        # The engine client waits request_timeout + 5 s: the hung engine gives up after 5.1 s.
        s = bot_settings(tmp_path, database_url=url, engine_url=engine.url, request_timeout=0.1)
        async with running_bot(api, s, store):
            # A message with the 🔁 button, as if posted earlier (the store has no record).
            button = {"type": 2, "style": 2, "label": "Another one", "custom_id": AGAIN}
            again = api.post_message(
                api.channel_ids[0], components=[{"type": 1, "components": [button]}]
            )
            async with locked_tables(url):
                recs: dict[str, Interaction] = {}
                for name, options, admin in COMMANDS:
                    recs[name] = await api.invoke(name, options, admin=admin)
                recs["🔁"] = await api.press_button(again.id, AGAIN)
                with contextlib.suppress(TimeoutError):  # the assertion below names the late
                    await api.wait_until(lambda: all(r.responded_at for r in recs.values()), 10)
                delays = {n: r.response_delay for n, r in recs.items()}
                slow = {n: d for n, d in delays.items() if d is None or d >= DEADLINE}
                assert not slow, f"acknowledged after Discord's 3 s: {slow}"
                kinds = {n: r.callbacks[0]["type"] for n, r in recs.items()}
                assert set(kinds.values()) == {5}, f"not deferred first: {kinds}"
                assert not any(r.answered for r in recs.values()), "the database was locked"
            # The locks are gone: every command finishes (the engine's part with its timeout).
            await api.wait_until(lambda: all(r.answered for r in recs.values()), 30)
            assert api.late_callbacks == []
            for name in ("templates", "meme"):
                (reply,) = recs[name].followups
                assert reply.ephemeral and "took longer than" in reply.content, name
            assert "engine not reachable" in recs["stats"].replies[-1].content
            assert "no longer in my records" in recs["🔁"].replies[-1].content
            assert "`strict`" in recs["settings"].replies[-1].content
            assert (await store.guild_settings(api.guild_id)).filter_level == "strict"
        assert api.unhandled == [], api.unhandled
