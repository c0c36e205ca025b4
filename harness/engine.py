"""The one way the tests and benchmarks start an engine: the real app on a loopback port, in
this process (`running_engine`: tests can reach its service and model) or as a `memebot engine`
subprocess (`engine_process`: what users run, for start-up time, memory and load tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import aiohttp
from aiohttp.test_utils import TestServer

from memebot.settings import Settings

if TYPE_CHECKING:
    from engine.decoding.model import LoadedModel
    from engine.service import MemeService

MEMEBOT = [sys.executable, "-m", "memebot.cli"]


@dataclass
class InProcessEngine:
    url: str  # base URL, no trailing slash
    service: MemeService
    http: aiohttp.ClientSession  # a client session, closed with the engine


@asynccontextmanager
async def running_engine(
    model: Path | LoadedModel, settings: Settings
) -> AsyncIterator[InProcessEngine]:
    """The real engine (app, service, scheduler) serving `model` on a loopback port. A path is
    loaded as `memebot engine` loads it (engine.service.load_service: the settings' decoder,
    threads and crowd weight, the warm-up, box lengths borrowed over the catalog); a model
    already loaded is served as the caller loaded it."""
    from engine.app import build_app
    from engine.service import MemeService, load_service

    if isinstance(model, Path):
        service = load_service(settings, model)
    else:
        service = MemeService(settings, model)
    server = TestServer(build_app(service), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield InProcessEngine(str(server.make_url("")).rstrip("/"), service, http)
    finally:
        await server.close()


@dataclass
class EngineProcess:
    proc: subprocess.Popen[bytes]
    url: str
    start_s: float  # from the process start to the first 200 from /readyz


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_engine_process(
    model: Path,
    *,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    port: int | None = None,
    timeout: float = 120.0,
    output: int | IO[bytes] = subprocess.DEVNULL,
) -> EngineProcess:
    """`memebot engine --model MODEL` (or `command --model MODEL`) on `port` (default: a free
    loopback port), returned once /readyz answers 200 (polled every 10 ms; the tf decoder
    compiles its programs before it is ready). The caller stops it (`stop_engine_process`)."""
    port = port or free_port()
    full_env = {**os.environ, **(env or {}), "MEMEBOT_ENGINE_PORT": str(port)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*(command or [*MEMEBOT, "engine"]), "--model", str(model)],
        env=full_env,
        stdout=output,
        stderr=output,
    )
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as r:
                if r.status == 200:
                    return EngineProcess(proc, url, time.perf_counter() - t0)
        except OSError:
            if proc.poll() is not None:
                break
        time.sleep(0.01)
    stop_engine_process(proc)
    raise RuntimeError(f"the engine ({model}) did not become ready (exit {proc.returncode})")


def stop_engine_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def engine_process(
    model: Path,
    *,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    timeout: float = 120.0,
) -> Iterator[EngineProcess]:
    """`start_engine_process`, stopped on exit."""
    engine = start_engine_process(model, env=env, command=command, timeout=timeout)
    try:
        yield engine
    finally:
        stop_engine_process(engine.proc)
