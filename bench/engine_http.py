"""bench/engine.py's figures of a `memebot engine` process: start-up time and memory, HTTP load
at 1 to 64 clients, captions/s with and without 100 servers' tastes, and the latency plot."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from bench.engine_decode import pct
from harness.engine import engine_process


async def http_load(
    url: str,
    clients: int,
    seconds: float,
    servers: list[str] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, float]:
    """`clients` clients posting memes for `seconds` (with `options`, else the API's defaults);
    with `servers`, each request names one of them in turn (their tastes act)."""
    import aiohttp

    lat: list[float] = []
    errors = tasted = 0
    deadline = time.perf_counter() + seconds

    async def client(i: int, http: aiohttp.ClientSession) -> None:
        nonlocal errors, tasted
        k = 0
        while time.perf_counter() < deadline:
            body: dict[str, Any] = {**(options or {}), "template": "success-kid", "image": False}
            body["seed"] = i * 100_000 + k
            if servers:
                body["server"] = servers[(i + k * clients) % len(servers)]
            t0 = time.perf_counter()
            async with http.post(f"{url}/v1/memes", json=body) as r:
                data = await r.read()
                if r.status == 200:
                    lat.append((time.perf_counter() - t0) * 1000)
                    tasted += b'"taste"' in data  # the server's taste was in the score
                else:
                    errors += 1
            k += 1

    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        elapsed = time.perf_counter() - t0
    return {
        "clients": clients,
        "captions_per_s": len(lat) / elapsed,
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "p99_ms": pct(lat, 99),
        "errors": errors,
        "tasted_share": tasted / max(len(lat), 1),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def engine_env(decoder: str | None) -> dict[str, str]:
    """A deep queue (the load test's clients never see 503) and the decoder asked for."""
    return {"MEMEBOT_MAX_QUEUE": "4096", **({"MEMEBOT_DECODER": decoder} if decoder else {})}


def startup(model_dir: Path, decoder: str, requests: int = 20) -> dict[str, float]:
    """Start-up time, RSS once ready and RSS after `requests` rendered memes."""
    with engine_process(model_dir, env=engine_env(decoder)) as engine:
        proc, url = engine.proc, engine.url
        ready_mb = rss_mb(proc.pid)
        for i in range(requests):
            body = json.dumps({"template": "success-kid", "seed": i}).encode()
            req = urllib.request.Request(
                f"{url}/v1/memes", body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
        return {
            "startup_s": engine.start_s,
            "rss_ready_mb": ready_mb,
            "rss_mb": rss_mb(proc.pid),
        }


def run_http(
    model_dir: Path, seconds: float, decoder: str
) -> tuple[list[dict[str, float]], float, float]:
    """HTTP load at 1, 8 and 64 clients; returns the results, RSS after them, start-up time."""
    with engine_process(model_dir, env=engine_env(decoder)) as engine:
        results = [asyncio.run(http_load(engine.url, c, seconds)) for c in (1, 8, 64)]
        return results, rss_mb(engine.proc.pid), engine.start_s


def write_random_tastes(models_dir: Path, base_version: str, n: int, seed: int = 0) -> list[str]:
    """`n` servers' tastes of random weights (the size a fitted taste has) for `base_version`,
    each its server's active one; returns the server ids."""
    from memebot import taste_file

    rng = np.random.default_rng(seed)
    servers = []
    for g in range(n):
        gid = 900_000_000_000_000_000 + g  # snowflake-sized
        weights = rng.normal(0.0, 0.5, taste_file.TASTE_BUCKETS).astype(np.float16)
        scorer = taste_file.TasteScorer(
            weights=weights, bias=0.0, guild_id=gid, base_version=base_version, version=1
        )
        taste_file.save_taste(taste_file.taste_file(models_dir, gid, 1), scorer)
        taste_file.write_active(models_dir, gid, 1)
        servers.append(str(gid))
    return servers


def run_tastes(model_dir: Path, seconds: float, decoder: str, n: int = 100) -> dict[str, float]:
    """Captions/s at 64 clients naming no server, then spread over `n` servers' tastes, with
    the options the bot sends for its default style (what servers get)."""
    import tempfile

    from bot.memes import STYLE_OPTIONS
    from memebot.artifact.meta import read_meta
    from memebot.choices import DEFAULT_STYLE

    version = read_meta(model_dir).version
    with tempfile.TemporaryDirectory(prefix="memebot-tastes-") as tmp:
        servers = write_random_tastes(Path(tmp), version, n)
        env = {**engine_env(decoder), "MEMEBOT_MODELS_DIR": tmp}
        with engine_process(model_dir, env=env) as engine:
            asyncio.run(http_load(engine.url, 8, min(2.0, seconds)))  # warm the engine up
            opts = STYLE_OPTIONS[DEFAULT_STYLE].to_body()
            plain = asyncio.run(http_load(engine.url, 64, seconds, options=opts))
            tastes = asyncio.run(http_load(engine.url, 64, seconds, servers, options=opts))
    return {
        "captions_per_s_64_plain": plain["captions_per_s"],
        "captions_per_s_64_tastes": tastes["captions_per_s"],
        "tastes_vs_plain": tastes["captions_per_s"] / plain["captions_per_s"],
        "tastes_servers": n,
        "tastes_p50_ms_64": tastes["p50_ms"],
        "plain_p50_ms_64": plain["p50_ms"],
        "tastes_errors": tastes["errors"] + plain["errors"],
        "tastes_used_share": tastes["tasted_share"],  # replies whose score had a taste term
    }


def plot(results: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax1 = plt.subplots(figsize=(7, 4))
    xs = [r["clients"] for r in results]
    ax1.plot(xs, [r["captions_per_s"] for r in results], "o-", label="captions/s")
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("concurrent clients")
    ax1.set_ylabel("captions/s")
    ax2 = ax1.twinx()
    for key, style in (("p50_ms", "--"), ("p99_ms", ":")):
        ax2.plot(xs, [r[key] for r in results], "s" + style, color="tab:red", label=key)
    ax2.set_ylabel("latency (ms)")
    fig.legend(loc="upper left", bbox_to_anchor=(0.1, 0.88))
    fig.suptitle("memebot engine over HTTP, text only (2-core CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
