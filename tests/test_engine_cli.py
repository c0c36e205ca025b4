"""`memebot engine` is safe by default: beyond loopback it needs a token or an explicit flag."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine.cli import is_loopback
from harness.cli import assert_one_line_error


def run(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MEMEBOT_ENGINE_TOKEN"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if token is not None:
        env["MEMEBOT_ENGINE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "memebot.cli", "engine", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10"])
def test_non_loopback_without_a_token_is_refused(host: str, tmp_path: Path) -> None:
    p = run("--host", host, "--port", str(free_port()), "--model", str(tmp_path / "nomodel"))
    assert_one_line_error(p, "MEMEBOT_ENGINE_TOKEN", "--insecure-no-token")
    assert "nomodel" not in p.stderr  # refused before the model is looked at


@pytest.mark.parametrize(
    ("host", "token", "flags"),
    [
        ("127.0.0.1", None, []),
        ("localhost", None, []),
        ("127.0.0.2", None, []),
        ("0.0.0.0", "s3cret", []),
        ("0.0.0.0", None, ["--insecure-no-token"]),
    ],
)
def test_loopback_a_token_or_the_flag_gets_past_the_check(
    host: str, token: str | None, flags: list[str], tmp_path: Path
) -> None:
    model = str(tmp_path / "nomodel")
    p = run("--host", host, "--port", str(free_port()), "--model", model, *flags, token=token)
    assert_one_line_error(p, "nomodel")  # the next check: the model
    assert "MEMEBOT_ENGINE_TOKEN is not set" not in p.stderr


def test_help_documents_the_flag() -> None:
    p = run("--help")
    assert p.returncode == 0 and "--insecure-no-token" in p.stdout


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("engine.localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("192.0.2.10", False),
        ("no-such-host.invalid", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.slow
def test_insecure_no_token_serves_and_warns(tiny_model: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MEMEBOT_ENGINE_TOKEN"}
    args = ["engine", "--host", "0.0.0.0", "--port", str(port), "--model", str(tiny_model)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "memebot.cli", *args, "--insecure-no-token"],
        stderr=subprocess.PIPE,
        text=True,
        env=env | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, "the engine exited"
                assert time.monotonic() < deadline, "the engine did not start"
                time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "without MEMEBOT_ENGINE_TOKEN" in err
