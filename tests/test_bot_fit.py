"""A rendered meme over Discord's attachment limit: re-encoded smaller, or a polite refusal,
against the stand-in's 413 (code 40005) and the real discord.py client and engine."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.errors import UserError
from bot.fit import TOO_LARGE, fit_image
from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.discord_standin import DiscordStandIn, Interaction
from harness.engine import running_engine
from memebot.settings import Settings
from memebot.store import Store

Scenario = Callable[[DiscordStandIn, Settings, Store], Coroutine[Any, Any, None]]


def noisy_png(size: int = 400) -> bytes:
    im = Image.effect_noise((size, size), 80).convert("RGB")
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def test_fit_image_keeps_small_files_and_shrinks_large_ones() -> None:
    data = noisy_png()
    assert fit_image(data, "m.png", len(data)) == (data, "m.png")
    small, name = fit_image(data, "m.png", len(data) // 10)
    assert name == "m.jpg" and len(small) <= len(data) // 10
    with Image.open(io.BytesIO(small)) as im:
        assert im.format == "JPEG"
    with pytest.raises(UserError):
        fit_image(data, "m.png", 100)


def run(tiny_model: Path, tmp_path: Path, scenario: Scenario) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path)
        async with standin() as api, migrated_store(s.database_url) as store:
            async with running_engine(tiny_model, s) as eng:
                await scenario(api, s.model_copy(update={"engine_url": eng.url}), store)
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())


async def meme(api: DiscordStandIn) -> Interaction:
    return await api.answered(await api.invoke("meme", {"template": "two-buttons"}))


@pytest.mark.slow
def test_a_meme_over_the_upload_limit_is_posted_smaller_or_refused_politely(
    tiny_model: Path, tmp_path: Path
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            (full,) = (await meme(api)).followups
            size = len(full.attachments[0].data)
            # The interaction names the limit: the bot re-encodes before sending.
            api.attachment_limit = size // 3
            (msg,) = (await meme(api)).followups
            assert len(msg.attachments[0].data) <= size // 3
            assert msg.attachments[0].filename.endswith(".jpg") and not msg.ephemeral
            # Discord's limit lower than the interaction said: the 413 is retried smaller.
            rec = await api.invoke("meme", {"template": "two-buttons"})
            api.attachment_limit = size // 6
            (msg,) = (await api.answered(rec)).followups
            assert 0 < len(msg.attachments[0].data) <= size // 6
            # Nothing readable fits: a polite ephemeral answer, the generation still stored.
            api.attachment_limit = 200
            rec = await meme(api)
            assert rec.replies[-1].ephemeral and rec.replies[-1].content == TOO_LARGE
            assert all(not r.attachments for r in rec.replies)
            since = datetime.now(UTC) - timedelta(hours=1)
            assert len(await store.recent_generations(since)) == 3  # the posted ones
            unposted = await store.generation(4)  # the refused one is kept, with no message
            assert unposted is not None and unposted.message_id is None

    run(tiny_model, tmp_path, scenario)
