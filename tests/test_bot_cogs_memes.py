"""/meme against the stand-in when the interaction's token expires before the meme is ready:
logged in one line, the generation kept in the store; and where the interaction's permissions
allow everything but Discord still refuses the meme's file or its vote reactions (403)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from bot.errors import names_internals
from harness.bot import bot_settings, migrated_store, run_scenario, running_bot, standin
from harness.discord_standin import (
    ADD_REACTIONS,
    ALL_BUT_ADMIN,
    ATTACH_FILES,
    SEND_MESSAGES,
    DiscordStandIn,
)
from harness.engine import running_engine
from memebot.settings import Settings
from memebot.store import Store

pytestmark = pytest.mark.slow


def test_a_meme_ready_after_its_token_expired_is_logged_and_kept(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path)
        async with standin() as api, migrated_store(s.database_url) as store:
            async with running_engine(tiny_model, s) as eng:
                s = s.model_copy(update={"engine_url": eng.url})
                async with running_bot(api, s, store):
                    rec = await api.invoke("meme", {"template": "two-buttons"})
                    api.token_lifetime = 0.0  # the meme takes longer than the token lasts
                    posts = f"POST /webhooks/{api.app_id}/{rec.token}"
                    await api.wait_until(lambda: posts in api.requests)
                    await asyncio.sleep(0.2)  # the bot handles the 401
                    assert rec.deferred and not rec.followups  # nothing could be posted
                    kept = await store.generation(1)
                    assert kept is not None and kept.template == "two-buttons"
                    assert kept.message_id is None
            assert api.unhandled == [], api.unhandled

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    lines = [r for r in caplog.records if "expired" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


def error_id(text: str) -> str:
    found = re.search(r"error id `([0-9a-f]{8})`", text)
    assert found, text
    return found.group(1)


def logged_once(caplog: pytest.LogCaptureFixture, eid: str) -> None:
    lines = [r for r in caplog.records if eid in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None, lines
    assert "403" in lines[0].getMessage()  # the admin's line says what Discord answered
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


def test_a_meme_discord_refuses_is_kept_and_the_user_told_what_is_missing(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        channel = api.channel_ids[0]
        # The interaction says the bot may do everything; Discord refuses its files.
        assert channel not in api.app_permissions
        assert ALL_BUT_ADMIN & ATTACH_FILES
        api.forbid_sends[channel] = ATTACH_FILES
        async with running_bot(api, s, store):
            rec = await api.answered(await api.invoke("meme", {"template": "two-buttons"}))
            (reply,) = rec.followups
            assert reply.ephemeral and not reply.attachments
            assert "**Attach Files**" in reply.content and "kept" in reply.content
            assert "Send Messages" not in reply.content  # a followup needs none
            assert not names_internals(reply.content) and "50013" not in reply.content
            assert rec.deleted_original, "the public 'thinking' message is gone"
            assert not [m for m in api.sent if m.attachments], "nothing posted"
            kept = await store.generation(1)
            assert kept is not None and kept.template == "two-buttons"
            assert kept.message_id is None
            logged_once(caplog, error_id(reply.content))
            # Send Messages refused alone: a meme is an interaction's answer, so it posts.
            api.forbid_sends[channel] = SEND_MESSAGES
            ok = await api.answered(
                await api.invoke("meme", {"template": "two-buttons"}, user_id=800101)
            )
            await api.wait_until(lambda: len(api.bot_reactions(ok.followups[0].id)) == 2)
            (posted,) = ok.followups
            assert posted.attachments and not posted.ephemeral

    with caplog.at_level(logging.WARNING):
        run_scenario(tiny_model, tmp_path, scenario)


def test_refused_vote_reactions_keep_the_meme_and_tell_the_user(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        api.forbid_sends[api.channel_ids[0]] = ADD_REACTIONS  # app_permissions: all
        async with running_bot(api, s, store):
            rec = await api.invoke("meme", {"template": "two-buttons"})
            await api.wait_until(lambda: len(rec.followups) == 2)
            posted, notice = rec.followups
            assert rec.original is posted and not rec.deleted_original
            assert posted.attachments and not posted.ephemeral and posted.id in api.messages
            assert notice.ephemeral and "**Add Reactions**" in notice.content
            assert "votes still count" in notice.content
            assert not names_internals(notice.content)
            assert api.bot_reactions(posted.id) == []
            gen = await store.generation_by_message(posted.id)
            assert gen is not None, "the meme is recorded with its message"
            logged_once(caplog, error_id(notice.content))

    with caplog.at_level(logging.WARNING):
        run_scenario(tiny_model, tmp_path, scenario)
