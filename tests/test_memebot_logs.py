"""memebot/logs.py: module loggers under one `memebot` root, configured once from settings as
text or JSON lines; and no module names its logger by hand."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.layers import modules_of
from memebot.cli import main
from memebot.errors import UsageError
from memebot.logs import configure, get_logger
from memebot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def restore_root() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("memebot")
    handlers, level, our_level = list(root.handlers), root.level, ours.level
    yield
    root.handlers[:], root.level, ours.level = handlers, level, our_level


def test_module_loggers_sit_under_the_memebot_root() -> None:
    assert get_logger("bot.votes").name == "memebot.bot.votes"
    assert get_logger("memebot.store.db").name == "memebot.store.db"
    root, chain = logging.getLogger("memebot"), []
    node: logging.Logger | None = get_logger("bot.votes")
    while node is not None:
        chain.append(node)
        node = node.parent
    assert root in chain  # one level and handler there governs every module


def test_json_lines_carry_level_logger_message_and_traceback(restore_root: None) -> None:
    out = io.StringIO()
    configure("info", "json", stream=out)
    log = get_logger("engine.scheduler")
    log.debug("not at info")
    log.warning("queue %d deep", 7)
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["level"], r["logger"], r["message"]) for r in lines] == [
        ("warning", "memebot.engine.scheduler", "queue 7 deep"),
        ("error", "memebot.engine.scheduler", "failed"),
    ]
    assert "ValueError: bad" in lines[1]["exception"] and "exception" not in lines[0]


def test_configure_again_replaces_its_own_handler_only(restore_root: None) -> None:
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    configure("info", "text", stream=io.StringIO())
    text = io.StringIO()
    configure("debug", "text", stream=text)
    assert other in root.handlers and root.level == logging.DEBUG
    assert logging.getLogger("memebot").level == logging.DEBUG
    ours = [h for h in root.handlers if h is not other]
    assert len([h for h in ours if isinstance(h, logging.StreamHandler)]) >= 1
    get_logger("bot.app").debug("hello")
    assert re.search(r" DEBUG memebot\.bot\.app: hello$", text.getvalue().strip())


def test_the_console_script_configures_from_settings(
    monkeypatch: pytest.MonkeyPatch, restore_root: None, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEMEBOT_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("MEMEBOT_LOG_FORMAT", "json")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):  # --version answers after logging is set up
        main(["--version"])
    root = logging.getLogger()
    assert logging.getLogger("memebot").level == logging.WARNING
    assert any(type(h.formatter).__name__ == "JsonFormatter" for h in root.handlers)


def test_libraries_stay_at_warning_unless_debugging(restore_root: None) -> None:
    out = io.StringIO()
    configure("info", "text", stream=out)
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    get_logger("store.migrate").info("ours")
    logging.getLogger("discord.gateway").warning("theirs, but a warning")
    assert [line.split(" ", 3)[3] for line in out.getvalue().splitlines()] == [
        "memebot.store.migrate: ours",
        "discord.gateway: theirs, but a warning",
    ]
    configure("debug", "text", stream=out)
    logging.getLogger("alembic.runtime.migration").info("now shown")
    assert out.getvalue().splitlines()[-1].endswith("alembic.runtime.migration: now shown")


@pytest.mark.parametrize(
    ("name", "value"), [("MEMEBOT_LOG_LEVEL", "loud"), ("MEMEBOT_LOG_FORMAT", "xml")]
)
def test_a_bad_setting_is_one_line(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=rf"^{name}='{value}': choose one of"):
        Settings.from_env({name: value})


def test_no_module_names_its_logger_by_hand() -> None:
    by_hand = re.compile(r"logging\.getLogger\((?!\)|\"aiohttp\.access\")")
    found = [
        m
        for m, src in modules_of(ROOT, ("memebot", "engine", "training", "retrain", "bot")).items()
        if by_hand.search(src) and m != "memebot.logs"
    ]
    assert found == []
