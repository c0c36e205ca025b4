"""The bot's engine client against the real engine over loopback HTTP: each failure becomes the
typed error whose message the user sees."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from bot.engine_client import (
    EngineBadRequest,
    EngineClient,
    EngineError,
    EngineOverloaded,
    EngineTimeout,
    EngineUnavailable,
    UnknownTemplate,
)
from tests.bot_harness import bot_settings, running_engine

pytestmark = pytest.mark.slow


def test_meme_templates_and_typed_errors(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path, engine_token=SecretStr("sesame"))
        async with running_engine(tiny_model, s) as url, aiohttp.ClientSession() as http:
            client = EngineClient(http, url, token="sesame")
            meme = await client.meme("two-buttons", {"seed": 3, "decoding": "greedy"})
            assert meme.template.slug == "two-buttons" and len(meme.boxes) == 2
            assert meme.image[:3] == b"\xff\xd8\xff" and meme.seed == 3
            assert meme.alt_text == " / ".join(meme.boxes) and meme.timings_ms
            assert "two-buttons" in [t.slug for t in await client.templates("two")]
            assert (await client.ready()).model_version == meme.model_version
            with pytest.raises(UnknownTemplate, match=r"(?i)unknown template"):
                await client.meme("no-such-template", {})
            with pytest.raises(
                EngineBadRequest, match="refused that: boxes: must be at most 8"
            ) as e:
                await client.meme("two-buttons", {"boxes": 99})
            assert e.value.field == "boxes"
            with pytest.raises(EngineUnavailable, match="MEMEBOT_ENGINE_TOKEN"):
                await EngineClient(http, url, token="wrong").meme("two-buttons", {})

    asyncio.run(go())


def test_engine_at_capacity_is_overloaded(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path, max_queue=1, max_batch_rows=1)
        async with running_engine(tiny_model, s) as url, aiohttp.ClientSession() as http:
            client = EngineClient(http, url)
            results = await asyncio.gather(
                *(client.meme("two-buttons", {"n": 10}) for _ in range(30)),
                return_exceptions=True,
            )
            over = [r for r in results if isinstance(r, EngineOverloaded)]
            assert over and over[0].retry_after == 1 and "busy" in str(over[0])
            assert all(not isinstance(r, Exception) or r in over for r in results)

    asyncio.run(go())


def test_down_and_silent_engines() -> None:
    async def go() -> None:
        async def never_answer(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await asyncio.Event().wait()  # holds the connection open, says nothing

        server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, aiohttp.ClientSession() as http:
            silent = EngineClient(http, f"http://127.0.0.1:{port}", timeout=0.3)
            with pytest.raises(EngineTimeout, match=r"longer than 0\.3 s"):
                await silent.meme("two-buttons", {})
            server.close()
            down = EngineClient(http, "http://127.0.0.1:9")
            with pytest.raises(EngineUnavailable, match="not reachable"):
                await down.templates()
            assert issubclass(EngineUnavailable, EngineError)

    asyncio.run(go())
