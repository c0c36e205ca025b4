"""/meme against the stand-in when the interaction's token expires before the meme is ready:
logged in one line, the generation kept in the store."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.engine import running_engine

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
