"""/retrain's progress message outlives the interaction's token (it is a channel message, not
the interaction's), and a progress message that can no longer be edited is logged once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from harness.bot import bot_settings, migrated_store, running_bot, standin
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
