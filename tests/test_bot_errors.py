"""What users are told when something fails: plain sentences with an error id, never an
exception's or a setting's name; the log line has the details and the same id. First the rules
on values, then through the real discord.py client, the stand-in, a real engine that wants
another token, an engine address where nothing listens, and a store that lost a table."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.errors import UserError, names_internals, public_text, user_text
from engine.client import EngineTimeout, EngineUnavailable
from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.discord_standin import DiscordStandIn
from harness.engine import running_engine
from memebot.errors import UsageError

ERROR_ID = re.compile(r"error id `([0-9a-f]{8})`")
# Names a user must never see.
FORBIDDEN = re.compile(r"MEMEBOT_|ClientConnector|Error\b|Exception\b|Traceback|aiohttp")


def error_id(text: str) -> str:
    m = ERROR_ID.search(text)
    assert m is not None, text
    return m.group(1)


def logged(caplog: pytest.LogCaptureFixture, eid: str) -> logging.LogRecord:
    (record,) = [r for r in caplog.records if eid in r.getMessage()]
    return record


@pytest.mark.parametrize(
    ("text", "internal"),
    [
        ("MEMEBOT_QUEUE_URL: use sqlite:///, postgresql:// or redis://", True),
        ("the bot's MEMEBOT_ENGINE_TOKEN is missing or wrong", True),
        ("ClientConnectorError", True),
        ("database sqlite:///x.db: OperationalError", True),
        ("RuntimeError: boom", True),
        ("asyncio.TimeoutError", True),
        ("Traceback (most recent call last):", True),
        ("The meme engine took longer than 5 s; try again.", False),
        ("Unknown template 'nope'; closest: two-buttons", False),
        ("Error: that is not a template", False),  # the word alone names nothing internal
        ("no new ratings since run #3: nothing to retrain on", False),
        ("Memes are made in <#900010> on this server.", False),
    ],
)
def test_what_counts_as_internal(text: str, internal: bool) -> None:
    assert names_internals(text) is internal


@pytest.mark.parametrize(
    ("error", "level", "detail"),
    [
        (EngineUnavailable("ClientConnectorError"), "WARNING", "ClientConnectorError"),
        (
            EngineUnavailable("the bot's MEMEBOT_ENGINE_TOKEN is missing or wrong"),
            "WARNING",
            "MEMEBOT_ENGINE_TOKEN",
        ),
        (UsageError("MEMEBOT_QUEUE_URL: use sqlite:///"), "WARNING", "MEMEBOT_QUEUE_URL"),
        (KeyError("generation_id"), "ERROR", None),
        (RuntimeError("the pool is closed"), "ERROR", None),
    ],
)
def test_internal_errors_are_logged_with_an_id_the_user_sees(
    error: Exception, level: str, detail: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    text = user_text(error, where="/meme", context="guild 1, channel 2, user 3")
    assert not FORBIDDEN.search(text), text
    eid = error_id(text)
    record = logged(caplog, eid)
    assert record.levelname == level and "/meme" in record.getMessage()
    assert "user 3" in record.getMessage()
    if detail is not None:
        assert detail in record.getMessage()
    else:  # unexpected: the traceback is in the log
        assert record.exc_info is not None and record.exc_info[1] is error


def test_errors_written_for_users_are_shown_as_they_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for error in (UserError("Give either a template or an image."), EngineTimeout(5)):
        assert user_text(error, where="/meme") == str(error)
    assert not caplog.records


def test_a_channel_message_naming_an_exception_gives_an_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    text = public_text("run #3 (finetune) failed: RuntimeError: boom", where="retrain run #3")
    assert text.startswith("run #3 (finetune) failed (") and not FORBIDDEN.search(text)
    assert "RuntimeError: boom" in logged(caplog, error_id(text)).getMessage()
    assert public_text("run #3 (full) rejected: val 1.2 -> 1.3", where="x").endswith("1.3")


# -- through the stand-in ---------------------------------------------------------------------


@pytest.mark.slow
def test_users_see_an_id_never_a_token_setting_or_exception(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    async def go() -> None:
        s = bot_settings(tmp_path, engine_token=SecretStr("the-engine-wants-this"))
        async with standin() as api, migrated_store(s.database_url) as store:
            async with running_engine(tiny_model, s) as eng:
                # The bot holds another token: the engine answers 401.
                wrong = s.model_copy(update={"engine_url": eng.url, "engine_token": None})
                async with running_bot(api, wrong, store):
                    await check(api, "MEMEBOT_ENGINE_TOKEN")
            down = s.model_copy(update={"engine_url": "http://127.0.0.1:9"})  # nothing listens
            async with running_bot(api, down, store):
                await check(api, "ClientConnectorError")
                async with store.db.begin() as conn:  # an unexpected error: a table is gone
                    await conn.exec_driver_sql("DROP TABLE votes")
                rec = await api.answered(await api.invoke("stats"))
                text = rec.replies[-1].content
                assert rec.replies[-1].ephemeral and "Something went wrong" in text
                assert not FORBIDDEN.search(text), text
                record = logged(caplog, error_id(text))
                assert record.levelname == "ERROR" and record.exc_info is not None
                assert "/stats" in record.getMessage()
            assert api.unhandled == []

    async def check(api: DiscordStandIn, detail: str) -> None:
        rec = await api.answered(await api.invoke("meme", {"template": "two-buttons"}))
        (reply,) = rec.followups
        assert reply.ephemeral and "not reachable" in reply.content
        assert not FORBIDDEN.search(reply.content), reply.content
        assert detail in logged(caplog, error_id(reply.content)).getMessage()

    asyncio.run(go())


@pytest.mark.slow
def test_a_failed_retrain_message_names_no_exception(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    async def go() -> None:
        s = bot_settings(tmp_path, engine_url="http://127.0.0.1:9")
        async with standin() as api, migrated_store(s.database_url) as store:
            channel = api.channel_ids[0]
            progress = api.post_message(channel, "someone asked for a model retrain")
            run = await store.create_run(
                "finetune", guild_id=api.guild_id, channel_id=channel, message_id=progress.id
            )
            async with running_bot(api, s, store):  # it follows the run from its start
                await store.claim_run(run.id, "trainer:1")
                await store.finish_run(run.id, "failed", error="RuntimeError: CUDA out of memory")
                await api.wait_until(lambda: "failed" in progress.content)
                assert not FORBIDDEN.search(progress.content), progress.content
                record = logged(caplog, error_id(progress.content))
                assert "RuntimeError: CUDA out of memory" in record.getMessage()

    asyncio.run(go())
