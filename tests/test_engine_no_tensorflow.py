"""Serving imports no TensorFlow: `memebot generate` and the engine, each run in a fresh
interpreter on the shipped char-gru model, render a meme with neither `tensorflow` nor `keras`
ever imported (what lets the engine and the bot run on the base install), nor the bot's stack
(SQLAlchemy, Alembic, discord.py, the profanity classifier's scikit-learn), nor the CLI modules
of the other commands (`training`, `bot`): each costs start-up time and resident memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "default"
HEAVY = (
    "tensorflow",
    "keras",
    "sqlalchemy",
    "alembic",
    "discord",
    "sklearn",
    "profanity_check",
    "training",
    "bot",
)
REPORT = f"""
import json, sys
print(json.dumps({{"heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def _run(code: str, tmp_path: Path, model: Path = SHIPPED) -> dict[str, object]:
    env_code = textwrap.dedent(code) + REPORT
    r = subprocess.run(
        [sys.executable, "-c", env_code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")},
            "MEMEBOT_MODEL": str(model),
            "MEMEBOT_OUTPUT_DIR": str(tmp_path / "out"),
            "MEMEBOT_CACHE_DIR": str(tmp_path / "cache"),
            "MEMEBOT_DOWNLOAD_IMAGES": "0",
            "PYTHONPATH": str(ROOT),
        },
    )
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "model",
    [None, pytest.param("tiny_transformer", marks=pytest.mark.slow)],
    ids=["shipped", "transformer"],
)
def test_memebot_generate_imports_no_tensorflow(
    tmp_path: Path, request: pytest.FixtureRequest, model: str | None
) -> None:
    """The shipped char-gru, and a transformer (NumPy KV-cache step over weights.npz)."""
    out = tmp_path / "meme.png"
    got = _run(
        f"""
        from memebot.cli import main
        argv = ["generate", "drake", "--seed", "3", "--format", "png", "-o", {str(out)!r}]
        assert main(argv) == 0
        """,
        tmp_path,
        SHIPPED if model is None else request.getfixturevalue(model),
    )
    assert got["heavy"] == []
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_engine_app_serves_a_meme_without_tensorflow(tmp_path: Path) -> None:
    got = _run(
        """
        import asyncio
        from aiohttp import ClientSession, web
        from engine.app import build_app
        from engine.service import load_service
        from memebot.cli import _command_of, build_parser
        from memebot.settings import Settings

        # What `memebot engine` does before it listens (web.run_app blocks, so stop there).
        settings = Settings.from_env()
        argv = ["engine", "--port", "8080"]
        args = build_parser(settings, _command_of(argv)).parse_args(argv)
        assert args.func.__module__ == "engine.cli"

        async def main():
            app = build_app(load_service(settings, args.model))
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            try:
                async with ClientSession() as http:
                    url = f"http://127.0.0.1:{port}"
                    r = await http.post(url + "/v1/memes", json={"template": "drake", "seed": 1})
                    assert r.status == 200, await r.text()
                    r = await http.get(url + "/readyz")
                    assert r.status == 200
            finally:
                await runner.cleanup()

        asyncio.run(main())
        """,
        tmp_path,
    )
    assert got["heavy"] == []
