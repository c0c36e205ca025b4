"""The real discord.py bot against the Discord stand-in, the real engine over HTTP and the real
store (SQLite here; PostgreSQL in test_bot_load.py): /meme, votes, 🔁, errors, admin guards."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.store import Store
from memebot.settings import Settings
from tests.bot_harness import bot_settings, migrated_store, running_bot, running_engine, standin
from tests.discord_standin import DiscordStandIn, Interaction

pytestmark = pytest.mark.slow
UP, DOWN = "👍", "👎"

Scenario = Callable[[DiscordStandIn, Settings, Store], Coroutine[Any, Any, None]]


def run(
    tiny_model: Path, tmp_path: Path, scenario: Scenario, *, engine: bool = True, **over: Any
) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path, **over)
        async with standin() as api, migrated_store(s.database_url) as store:
            if engine:
                async with running_engine(tiny_model, s) as url:
                    await scenario(api, s.model_copy(update={"engine_url": url}), store)
            else:
                await scenario(api, s, store)
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())


async def meme(api: DiscordStandIn, **options: Any) -> Interaction:
    return await api.answered(await api.invoke("meme", options))


def test_meme_posts_image_caption_votes_and_stores(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store) as bot:
            assert bot.synced is True and api.command_puts, "commands synced at first start"
            names = {c["name"] for c in api.command_puts[-1][1]}
            assert {"meme", "templates", "top", "stats", "retrain", "model"} <= names
            rec = await meme(api, template="two-buttons", start_text="when", style="greedy")
            assert rec.callbacks[0]["type"] == 5, "deferred before calling the engine"
            (msg,) = rec.followups
            (att,) = msg.attachments
            img = Image.open(io.BytesIO(att.data))
            assert img.format == "JPEG" and att.filename == "two-buttons.jpg"
            lines = msg.content.split("\n")
            assert len(lines) == 2 and lines[0].startswith("> when")
            assert att.description == " / ".join(line[2:] for line in lines)
            button = msg.components[0]["components"][0]
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            assert sorted(api.bot_reactions(msg.id)) == sorted([UP, DOWN])
            gen = await store.generation_by_message(msg.id)
            assert gen is not None and gen.template == "two-buttons"
            assert button["custom_id"] == f"memebot:again:{gen.id}"
            assert gen.user_id == 800100 and gen.channel_id == api.channel_ids[0]
            assert gen.guild_id == api.guild_id and gen.seed is not None
            assert gen.model_version and gen.model_version.startswith("char-gru-")
            assert gen.options["style"] == "greedy" and gen.timings
        # A second start with the same commands does not sync again.
        async with running_bot(api, s, store) as bot:
            assert bot.synced is False and len(api.command_puts) == 1

    run(tiny_model, tmp_path, scenario)
