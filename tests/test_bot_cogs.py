"""Every command against the real discord.py client and the Discord stand-in, with a hung
engine and a database whose tables another transaction holds locked (real PostgreSQL): each
interaction (every command and option that takes another path, both buttons, every
autocomplete) is acknowledged within Discord's 3 s, and each ends with an answer once the
database is free again (the engine's timeout ends the engine's part; an autocomplete offers
no suggestions rather than none in time)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.databases import throwaway_postgres
from harness.discord_standin import Attachment, Interaction
from harness.slow import hung_engine, locked_tables

pytestmark = pytest.mark.slow
DEADLINE = 3.0  # seconds Discord waits for an interaction's first response
AGAIN = "memebot:again:1"  # the 🔁 button of generation 1
CALLER = 800100  # the stand-in's default user, who invokes every command here
PAGE = "memebot:tpl:n:1:"  # /templates' ▶ button to page 2 of every template


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 90, 40)).save(buf, "PNG")
    return buf.getvalue()


# label -> (command, options, invoked by an admin): every slash command that does I/O, and
# each option that takes another path (a server's taste, not the base model).
COMMANDS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "meme": ("meme", {"template": "two-buttons"}, False),
    "meme image": ("meme", {"image": Attachment("cat.png", "image/png", png(), None)}, False),
    "templates": ("templates", {"query": "two"}, False),
    "top": ("top", {"period": "all"}, False),
    "stats": ("stats", {}, False),
    "forget-me": ("forget-me", {}, False),
    "settings": ("settings", {"content_filter": "strict"}, True),
    "model": ("model", {}, True),
    "model rollback": ("model", {"rollback": True}, True),
    "retrain base": ("retrain", {"base": True}, True),
    "retrain taste": ("retrain", {}, True),
}
# (command, focused option): every autocomplete asks the engine.
AUTOCOMPLETES = [("meme", "template"), ("templates", "query"), ("top", "template")]


def test_every_command_answers_in_time_with_a_hung_engine_and_a_locked_database(
    tmp_path: Path,
) -> None:
    with throwaway_postgres() as url:
        asyncio.run(scenario(tmp_path, url))


async def scenario(tmp_path: Path, url: str) -> None:
    async with hung_engine() as engine, standin() as api, migrated_store(url) as store:
        # The engine client waits request_timeout + 5 s: the hung engine gives up after 5.1 s.
        # The caller owns the bot: /retrain base:true gets past the owner check to the store.
        s = bot_settings(
            tmp_path,
            database_url=url,
            engine_url=engine.url,
            request_timeout=0.1,
            owner_ids=(CALLER,),
        )
        async with running_bot(api, s, store):
            # Messages with the 🔁 and ▶ buttons, as if posted earlier (the store has no record).
            channel = api.channel_ids[0]
            button = {"type": 2, "style": 2, "label": "Another one", "custom_id": AGAIN}
            again = api.post_message(channel, components=[{"type": 1, "components": [button]}])
            button = {"type": 2, "style": 2, "label": "Next", "custom_id": PAGE}
            pager = api.post_message(
                channel, "page 1", components=[{"type": 1, "components": [button]}]
            )
            async with locked_tables(url):
                recs: dict[str, Interaction] = {}
                for label, (name, options, admin) in COMMANDS.items():
                    recs[label] = await api.invoke(name, options, admin=admin)
                recs["🔁"] = await api.press_button(again.id, AGAIN)
                recs["▶"] = await api.press_button(pager.id, PAGE)
                for name, option in AUTOCOMPLETES:
                    recs[f"{name} {option}?"] = await api.autocomplete(name, {option: "t"}, option)
                with contextlib.suppress(TimeoutError):  # the assertion below names the late
                    await api.wait_until(lambda: all(r.responded_at for r in recs.values()), 10)
                delays = {n: r.response_delay for n, r in recs.items()}
                slow = {n: d for n, d in delays.items() if d is None or d >= DEADLINE}
                assert not slow, f"acknowledged after Discord's 3 s: {slow}"
                kinds = {n: r.callbacks[0]["type"] for n, r in recs.items()}
                # Deferred (5), a button's deferred update (6), suggestions (8): none waited.
                want = {n: 6 if n == "▶" else 8 if n.endswith("?") else 5 for n in recs}
                assert kinds == want, f"not deferred first: {kinds}"
                for name, option in AUTOCOMPLETES:  # the engine is hung: no suggestions
                    assert recs[f"{name} {option}?"].choices == [], (name, option)
                commands = {n: r for n, r in recs.items() if not n.endswith("?")}
                early = [n for n, r in commands.items() if r.answered]
                assert not early, f"answered while the database was locked: {early}"
            # The locks are gone: every command finishes (the engine's part with its timeout).
            await api.wait_until(lambda: all(r.answered for r in commands.values()), 30)
            assert api.late_callbacks == []
            for name in ("templates", "meme", "meme image", "▶"):
                (reply,) = recs[name].followups
                assert reply.ephemeral and "took longer than" in reply.content, name
            assert pager.content == "page 1" and pager.id in api.messages, "the pager stays"
            assert "engine not reachable" in recs["stats"].replies[-1].content
            assert "no longer in my records" in recs["🔁"].replies[-1].content
            assert "`strict`" in recs["settings"].replies[-1].content
            assert (await store.guild_settings(api.guild_id)).filter_level == "strict"
            assert "no taste of its own" in recs["model rollback"].replies[-1].content
            assert "a taste needs at least" in recs["retrain taste"].replies[-1].content
            assert "nothing to retrain on" in recs["retrain base"].replies[-1].content
            assert await store.current_run() is None, "nothing queued"
            progress = [m for m in api.sent if "asked for a model retrain" in m.content]
            assert progress and all(m.id not in api.messages for m in progress), "deleted again"
        assert api.unhandled == [], api.unhandled
