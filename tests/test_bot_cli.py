"""`memebot bot` and `memebot up` as a user runs them, with Discord unreachable: one line, no
traceback, and `up` stops the engine it started."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import assert_one_line_error
from harness.factories import scratch_env

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


# `memebot up` with discord.py pointed at the stand-in (its REST base and default gateway);
# SIGUSR1 dumps every thread's stack, for the failure message of a stop that hangs.
STANDIN_DISCORD = """
import faulthandler
import signal
import sys
import discord.gateway
import discord.http
import yarl
faulthandler.register(signal.SIGUSR1, all_threads=True)
url = sys.argv.pop(1)
discord.http.Route.BASE = url + "/api/v10"
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.replace("http", "ws") + "/gateway")
from memebot.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "last_line"),
    [
        (signal.SIGINT, 130, "memebot: interrupted"),  # Ctrl-C in a terminal
        (signal.SIGTERM, 0, "stopped (SIGTERM)"),  # systemd / docker stop
    ],
)
def test_a_signal_right_after_connecting_stops_the_bot_and_the_engine(
    tiny_model: Path, tmp_path: Path, sig: signal.Signals, code: int, last_line: str
) -> None:
    """`memebot up` connected to the Discord stand-in, then the signal to its process group at
    once (as a terminal or systemd sends it), which lands during the gateway handshake: on
    Python 3.11 asyncio.run's single cancellation was swallowed there and the bot ran on
    (bot/lifecycle.py). Now the bot leaves the gateway, the engine child stops, one line."""
    from harness.discord_standin import DiscordStandIn

    port = free_port()
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "DISCORD_TOKEN": "stand-in-token",
        **scratch_env(tmp_path),
    }

    async def go() -> tuple[int, str]:
        discord = DiscordStandIn()
        await discord.start()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                STANDIN_DISCORD,
                discord.url,
                "up",
                "--port",
                str(port),
                "--model",
                str(tiny_model),
                env=env,
                cwd=Path(__file__).resolve().parent.parent,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, like a terminal's job
            )
            exited = asyncio.ensure_future(proc.communicate())
            try:
                await discord.wait_until(lambda: bool(discord._sockets), timeout=240)
                os.killpg(proc.pid, sig)
                try:
                    _, err = await asyncio.wait_for(asyncio.shield(exited), timeout=90)
                except TimeoutError:
                    proc.send_signal(signal.SIGUSR1)
                    await asyncio.sleep(2)
                    os.killpg(proc.pid, signal.SIGKILL)
                    _, err = await exited
                    pytest.fail(f"still running 90 s after {sig.name}:\n{err.decode()[-6000:]}")
            finally:
                if proc.returncode is None:
                    os.killpg(proc.pid, signal.SIGKILL)
            await discord.wait_until(lambda: not discord._sockets, timeout=30)
            return int(proc.returncode or 0), err.decode()
        finally:
            await discord.close()

    got, err = asyncio.run(go())
    assert got == code, err
    assert f"listening on http://127.0.0.1:{port} (uvloop)" in err  # the engine's event loop
    assert err.rstrip().splitlines()[-1].endswith(last_line), err
    assert "Traceback" not in err
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))  # the engine child is gone
