"""`memebot bot` (the Discord bot) and `memebot up` (engine and bot together). See
docs/BOT.md."""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.lifecycle import StopSignals, run_until_stopped
from memebot.errors import UsageError
from memebot.logs import get_logger
from memebot.settings import Settings

log = get_logger(__name__)


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    b = sub.add_parser(
        "bot",
        help="run the Discord bot (needs DISCORD_TOKEN and a running engine; docs/BOT.md)",
        description="Run the Discord bot. It talks to the engine at MEMEBOT_ENGINE_URL and "
        "keeps memes and votes in MEMEBOT_DATABASE_URL (migrated at start).",
    )
    _shard_flag(b, settings)
    b.set_defaults(func=cmd_bot)

    u = sub.add_parser(
        "up",
        help="run the engine and the Discord bot together (Ctrl-C stops both)",
        description="Start the engine as a child process, start the bot once the engine's "
        "/readyz answers, stop both on Ctrl-C (exit 130) or SIGTERM (exit 0).",
    )
    u.add_argument("--model", type=Path, default=settings.model_dir, help="artifact directory")
    u.add_argument("--port", type=int, default=settings.engine_port, help="engine TCP port")
    u.add_argument(
        "--ready-timeout",
        type=float,
        default=180.0,
        help="seconds to wait for the engine to load its model",
    )
    _shard_flag(u, settings)
    u.set_defaults(func=cmd_up)


def _shard_flag(p: argparse.ArgumentParser, settings: Settings) -> None:
    p.add_argument(
        "--shard",
        type=int,
        default=None,
        metavar="ID",
        help="with MEMEBOT_SHARDS=N: run shard ID (0..N-1) in this process; run one process "
        "per shard against one PostgreSQL database",
    )


def _token(settings: Settings) -> str:
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        raise UsageError(
            "DISCORD_TOKEN is not set: put the bot token from the Discord developer portal in "
            "the environment or .env (docs/BOT.md)"
        )
    return settings.discord_token.get_secret_value().strip()


def _shard_options(settings: Settings, shard: int | None) -> dict[str, Any]:
    count = settings.shards or 1
    if shard is None:
        if count > 1:
            raise UsageError(
                f"MEMEBOT_SHARDS={count}: start one process per shard with --shard 0..{count - 1}"
            )
        return {}
    if not 0 <= shard < count:
        raise UsageError(f"--shard {shard}: must be between 0 and {count - 1} (MEMEBOT_SHARDS)")
    return {"shard_id": shard, "shard_count": count}


async def _run_bot(settings: Settings, token: str, shard: dict[str, Any]) -> None:
    import discord

    from bot.app import MemeBot

    bot = MemeBot(settings, **shard)
    signals = StopSignals()
    try:
        with signals:
            async with bot:  # its close() lets memes being posted finish, then leaves the gateway
                await run_until_stopped(lambda: bot.start(token), signals.stop)
    except discord.LoginFailure as e:
        raise UsageError("DISCORD_TOKEN was refused by Discord (reset it in the portal)") from e
    except (OSError, discord.GatewayNotFound) as e:  # aiohttp's ClientConnectorError included
        if bot.is_ready():
            raise  # connected once: not a set-up problem, keep the traceback
        raise UsageError(f"cannot reach Discord: {e}") from e
    except discord.PrivilegedIntentsRequired as e:  # pragma: no cover - the bot asks for none
        raise UsageError(str(e)) from e
    if signals.signum == signal.SIGINT:
        raise KeyboardInterrupt  # "memebot: interrupted", exit 130, as for any command
    if signals.signum is not None:
        log.info("stopped (%s)", signal.Signals(signals.signum).name)


def cmd_bot(args: argparse.Namespace, settings: Settings) -> int:
    token = _token(settings)
    shard = _shard_options(settings, args.shard)
    asyncio.run(_run_bot(settings, token, shard))
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    token = _token(settings)  # before starting anything
    shard = _shard_options(settings, args.shard)
    host = "127.0.0.1"
    # SIGTERM (systemd, docker stop) ends `up` through the finally below, which stops the
    # engine child too; while the bot runs, its own handler stops it cleanly first.
    previous = signal.signal(signal.SIGTERM, _terminate)
    engine = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "memebot.cli",
            "engine",
            "--host",
            host,
            "--port",
            str(args.port),
            "--model",
            str(args.model),
        ],
    )
    bot_settings = settings.model_copy(update={"engine_url": f"http://{host}:{args.port}"})
    try:
        asyncio.run(_wait_engine(bot_settings, engine, args.ready_timeout))
        log.info("engine ready on %s; starting the bot", bot_settings.engine_url)
        asyncio.run(_run_bot(bot_settings, token, shard))
    finally:
        _stop(engine)
        signal.signal(signal.SIGTERM, previous)
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


async def _wait_engine(settings: Settings, engine: subprocess.Popen[bytes], timeout: float) -> None:
    import aiohttp

    from engine.client import EngineClient, EngineError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        client = EngineClient(session, settings.engine_url, timeout=2.0)
        while True:
            if engine.poll() is not None:
                raise UsageError(f"the engine exited with code {engine.returncode} at start")
            try:
                await client.ready()
                return
            except EngineError:
                if loop.time() >= deadline:
                    raise UsageError(
                        f"the engine did not answer /readyz within {timeout:g} s"
                    ) from None
            await asyncio.sleep(0.25)  # polling a child process, not test synchronisation


def _stop(engine: subprocess.Popen[bytes]) -> None:
    if engine.poll() is None:
        engine.send_signal(signal.SIGINT)
        try:
            engine.wait(15)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()
