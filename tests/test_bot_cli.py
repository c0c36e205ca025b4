"""`memebot bot` and `memebot up` as a user runs them, with Discord unreachable: one line, no
traceback, and `up` stops the engine it started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_memebot_cli import assert_one_line_error

# Discord's API base pointed at a port where nothing listens (discord.py has no setting for it).
UNREACHABLE_DISCORD = """
import sys
import discord.http
discord.http.Route.BASE = "http://127.0.0.1:9/api/v10"
from memebot.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "DISCORD_TOKEN": "stand-in-token",
        "MEMEBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        "MEMEBOT_CACHE_DIR": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-c", UNREACHABLE_DISCORD, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bot_with_discord_unreachable_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run(["bot"], tmp_path), "cannot reach Discord")


@pytest.mark.slow
def test_up_starts_the_engine_then_stops_it_when_the_bot_fails(
    tiny_model: Path, tmp_path: Path
) -> None:
    port = free_port()
    p = run(["up", "--port", str(port), "--model", str(tiny_model)], tmp_path)
    assert_one_line_error(p, "cannot reach Discord")
    assert "engine ready" in p.stderr  # the engine came up (its /readyz answered) first
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))  # the engine child is gone
