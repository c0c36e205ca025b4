"""The bot's engine client against the real engine over loopback HTTP: each failure becomes the
typed error whose message the user sees."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from pydantic import SecretStr

from bot.memes import STYLE_OPTIONS, MemeAsk
from engine.client import (
    EngineBadRequest,
    EngineClient,
    EngineError,
    EngineOverloaded,
    EngineTimeout,
    EngineUnavailable,
    UnknownTemplate,
    _error_for,
    checked,
)
from engine.schema import MemeOptions
from harness.bot import bot_settings
from harness.engine import running_engine
from memebot.choices import STYLES
from memebot.decoding import METHODS


def test_404_is_an_unknown_template_only_for_the_template_field() -> None:
    """The engine's error body names the field: that, not the message's wording, decides."""
    body = {"error": "template: no template matches 'nope'; closest: drake", "field": "template"}
    e = _error_for(404, json.dumps(body), None)
    assert isinstance(e, UnknownTemplate)
    assert str(e) == "No template matches 'nope'; closest: drake"
    worded = {"error": "path: unknown template directory", "field": "path"}
    e = _error_for(404, json.dumps(worded), None)
    assert not isinstance(e, UnknownTemplate) and isinstance(e, EngineBadRequest)
    assert e.field == "path"
    assert not isinstance(_error_for(404, "unknown template", None), UnknownTemplate)


def test_requests_are_checked_by_the_engine_schema() -> None:
    with pytest.raises(EngineBadRequest, match="refused that: boxes: must be at most 8") as e:
        checked(MemeOptions, boxes=99)
    assert e.value.field == "boxes"
    with pytest.raises(EngineBadRequest, match="refused that: decoding: got 'fancy'") as e:
        checked(MemeOptions, decoding="fancy")
    assert e.value.field == "decoding"
    with pytest.raises(EngineBadRequest, match="refused that: start: has more than 2 boxes"):
        MemeAsk("drake", start_text="a|b|c|", boxes=2).engine_options(1)
    opts = MemeAsk("drake", start_text="Hi", style="creative").engine_options(7)
    assert opts.to_body() == {
        "decoding": "top-k-top-p",
        "temperature": 1.15,
        "top_k": 40,
        "top_p": 0.92,
        "seed": 7,
        "start": "Hi",
    }


def test_styles_are_engine_options() -> None:
    assert set(STYLE_OPTIONS) == set(STYLES)
    for style, opts in STYLE_OPTIONS.items():
        assert opts.decoding in METHODS, style
        assert MemeOptions.model_validate(opts.to_body()) == opts


@pytest.mark.slow
def test_meme_templates_and_typed_errors(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path, engine_token=SecretStr("sesame"))
        async with running_engine(tiny_model, s) as eng:
            client = EngineClient(eng.http, eng.url, token="sesame")
            meme = await client.meme("two-buttons", MemeOptions(seed=3, decoding="greedy"))
            assert meme.template.slug == "two-buttons" and len(meme.boxes) == 2
            assert meme.image[:3] == b"\xff\xd8\xff" and meme.seed == 3
            assert meme.alt_text == " / ".join(meme.boxes) and meme.timings_ms
            assert meme.options["server"] is None
            for_guild = await client.meme("two-buttons", MemeOptions(seed=3), server=2**60)
            assert for_guild.options["server"] == str(2**60)  # a snowflake, as digits
            assert "two-buttons" in [t.slug for t in await client.templates("two")]
            assert (await client.ready()).model_version == meme.model_version
            with pytest.raises(UnknownTemplate, match=r"(?i)unknown template"):
                await client.meme("no-such-template")
            # The box count is the template's: only the engine can refuse this one.
            with pytest.raises(
                EngineBadRequest, match="refused that: start: has more than 2 boxes"
            ) as e:
                await client.meme("two-buttons", MemeOptions(start="a|b|c|"))
            assert e.value.field == "start"
            with pytest.raises(EngineUnavailable, match="MEMEBOT_ENGINE_TOKEN"):
                await EngineClient(eng.http, eng.url, token="wrong").meme("two-buttons")

    asyncio.run(go())


@pytest.mark.slow
def test_caption_upload_with_schema_options(tiny_model: Path, tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(buf, format="PNG")

    async def go() -> None:
        async with running_engine(tiny_model, bot_settings(tmp_path)) as eng:
            client = EngineClient(eng.http, eng.url)
            up: dict[str, Any] = {"filename": "a.png", "content_type": "image/png"}
            meme = await client.caption_upload(buf.getvalue(), **up, options=MemeOptions(seed=2))
            assert len(meme.boxes) == 2 and meme.seed == 2  # the upload's default: top, bottom
            three = MemeOptions(seed=2, boxes=3, decoding="greedy")
            meme = await client.caption_upload(buf.getvalue(), **up, options=three)
            assert len(meme.boxes) == 3 and meme.options["decoding"]["method"] == "greedy"
            meme = await client.caption_upload(buf.getvalue(), **up, options=three, server=7)
            assert meme.options["server"] == "7"

    asyncio.run(go())


@pytest.mark.slow
def test_engine_at_capacity_is_overloaded(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path, max_queue=1, max_batch_rows=1)
        async with running_engine(tiny_model, s) as eng:
            client = EngineClient(eng.http, eng.url)
            results = await asyncio.gather(
                *(client.meme("two-buttons", MemeOptions(n=10)) for _ in range(30)),
                return_exceptions=True,
            )
            over = [r for r in results if isinstance(r, EngineOverloaded)]
            assert over and over[0].retry_after == 1 and "busy" in str(over[0])
            assert all(not isinstance(r, Exception) or r in over for r in results)

    asyncio.run(go())


@pytest.mark.slow
def test_down_and_silent_engines() -> None:
    async def go() -> None:
        async def never_answer(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await asyncio.Event().wait()  # holds the connection open, says nothing

        server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, aiohttp.ClientSession() as http:
            silent = EngineClient(http, f"http://127.0.0.1:{port}", timeout=0.3)
            with pytest.raises(EngineTimeout, match=r"longer than 0\.3 s"):
                await silent.meme("two-buttons")
            server.close()
            down = EngineClient(http, "http://127.0.0.1:9")
            with pytest.raises(EngineUnavailable, match="not reachable"):
                await down.templates()
            assert issubclass(EngineUnavailable, EngineError)

    asyncio.run(go())
