"""/retrain's progress message outlives the interaction's token (it is a channel message, not
the interaction's), a progress message that can no longer be edited is logged once, and the
message is posted before the run is queued: Discord refusing it (403, whatever the
interaction's permissions said) queues nothing, and a refused request deletes it."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from bot.errors import names_internals
from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.discord_standin import SEND_MESSAGES
from memebot.store import NewGeneration

NAMED = "retrain run #1's message"  # the log line of a failed progress edit


def test_retrain_progress_is_edited_after_the_token_expired(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        # No engine: /retrain and its progress read and write the store only.
        s = bot_settings(tmp_path, engine_url="http://127.0.0.1:9")
        async with standin() as api, migrated_store(s.database_url) as store:
            async with running_bot(api, s, store) as bot:
                admin = bot.get_cog("Admin")
                assert admin is not None
                admin.poll_interval = 0.02  # type: ignore[attr-defined]
                await store.record_generation(_generation(api.guild_id, api.channel_ids[0]))
                await store.set_vote(123456, 800200, 1)  # a new rating to retrain on
                owner = int(api.owner["id"])
                asked = await api.answered(
                    await api.invoke("retrain", {"mode": "full", "base": True}, user_id=owner)
                )
                assert "run #1 queued" in asked.followups[-1].content
                api.token_lifetime = 0.0  # every interaction token has expired from here on
                progress = next(m for m in api.sent if "asked for a model retrain" in m.content)
                await store.claim_run(1, "trainer:1")
                await store.update_run(1, stage="training", progress={"epoch": 1, "epochs": 2})
                await api.wait_until(lambda: "epoch 1/2" in progress.content)
                # A moderator deletes the progress message: the edits fail, logged once.
                api.messages.pop(progress.id)
                await store.update_run(1, progress={"epoch": 2, "epochs": 2})
                async with asyncio.timeout(30):  # the log line comes after the 404
                    while not any(NAMED in r.getMessage() for r in caplog.records):
                        await asyncio.sleep(0.02)
                await store.finish_run(1, "rejected", gate={"passed": False}, error="worse")
                async with asyncio.timeout(30):  # the watcher ends with the run
                    while 1 in admin._watchers:  # type: ignore[attr-defined]
                        await asyncio.sleep(0.02)
            assert api.unhandled == [], api.unhandled

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    failed = [r for r in caplog.records if NAMED in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


def _generation(guild_id: int, channel_id: int) -> NewGeneration:
    return NewGeneration(
        channel_id=channel_id,
        user_id=800100,
        template="two-buttons",
        boxes=["a", "b"],
        guild_id=guild_id,
        message_id=123456,
    )


def test_retrain_queues_nothing_when_discord_refuses_its_progress_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> str:
        s = bot_settings(tmp_path, engine_url="http://127.0.0.1:9")
        async with standin() as api, migrated_store(s.database_url) as store:
            channel = api.channel_ids[0]
            async with running_bot(api, s, store):
                await store.record_generation(_generation(api.guild_id, channel))
                await store.set_vote(123456, 800200, 1)  # a new rating: a run could start
                owner = int(api.owner["id"])
                # The interaction says the bot may post here (app_permissions: all); Discord
                # refuses the channel message.
                assert channel not in api.app_permissions
                api.forbid_sends[channel] = SEND_MESSAGES
                options = {"mode": "full", "base": True}
                rec = await api.answered(await api.invoke("retrain", options, user_id=owner))
                (reply,) = rec.replies
                assert reply.ephemeral and "**Send Messages**" in reply.content
                assert "Nothing was queued" in reply.content
                assert not names_internals(reply.content) and "50013" not in reply.content
                assert await store.runs() == [], "nothing queued"
                assert not [m for m in api.messages.values() if m["type"] == 0], "no post"
                found = re.search(r"error id `([0-9a-f]{8})`", reply.content)
                assert found, reply.content
                eid = found.group(1)
                # Posting allowed again: the run is queued with its message.
                del api.forbid_sends[channel]
                ok = await api.answered(await api.invoke("retrain", options, user_id=owner))
                assert "run #1 queued" in ok.replies[-1].content
                (run,) = await store.runs()
                assert run.message_id is not None and run.message_id in api.messages
                # A refused request (one run at a time): its progress message is deleted.
                again = await api.answered(await api.invoke("retrain", options, user_id=owner))
                assert again.replies[-1].ephemeral and "run #2" not in again.replies[-1].content
                posts = [m for m in api.messages.values() if m["type"] == 0]
                assert [int(m["id"]) for m in posts] == [run.message_id], posts
                assert len(await store.runs()) == 1
            assert api.unhandled == [], api.unhandled
        return eid

    with caplog.at_level(logging.WARNING):
        eid = asyncio.run(go())
    lines = [r for r in caplog.records if eid in r.getMessage()]
    assert len(lines) == 1 and "403" in lines[0].getMessage() and lines[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
