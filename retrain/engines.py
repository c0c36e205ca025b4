"""Hot reload of every engine replica (`POST /v1/model/reload`), and the `active` pointer that
an engine restarted later starts from (MEMEBOT_MODEL=<models dir>/active)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import aiohttp

RELOAD_TIMEOUT_S = 120.0  # loading a model takes seconds; a busy engine finishes requests first


@dataclass(frozen=True)
class ReloadResult:
    url: str
    status: str  # ok | refused (422: bad artifact) | unreachable | error
    detail: str  # the version now served, or what went wrong


async def reload_one(
    session: aiohttp.ClientSession, url: str, path: Path, token: str | None
) -> ReloadResult:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with session.post(
            f"{url}/v1/model/reload", json={"path": str(path)}, headers=headers
        ) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientConnectionError, TimeoutError) as e:
        return ReloadResult(url, "unreachable", f"{type(e).__name__}: {e}")
    except (aiohttp.ClientError, ValueError) as e:
        return ReloadResult(url, "error", f"{type(e).__name__}: {e}")
    if resp.status == 200 and isinstance(body, dict):
        return ReloadResult(url, "ok", str(body.get("model_version")))
    message = body.get("error", body) if isinstance(body, dict) else body
    if resp.status == 422:
        return ReloadResult(url, "refused", str(message))
    return ReloadResult(url, "error", f"HTTP {resp.status}: {message}")


async def reload_all(
    urls: tuple[str, ...], path: Path, *, token: str | None = None
) -> list[ReloadResult]:
    """Every replica loads `path`, in parallel."""
    timeout = aiohttp.ClientTimeout(total=RELOAD_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return list(await asyncio.gather(*(reload_one(session, u, path, token) for u in urls)))


def point_active(models_dir: Path, target: Path) -> Path:
    """`models_dir/active` -> target, swapped atomically (a new symlink renamed over the old):
    an engine starting at any moment sees the old model or the new one, never nothing."""
    models_dir.mkdir(parents=True, exist_ok=True)
    link = models_dir / "active"
    tmp = models_dir / f".active.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.resolve(), target_is_directory=True)
    tmp.replace(link)
    return link
