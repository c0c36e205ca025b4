"""The engine over real HTTP on loopback: happy paths, every bad input, capacity, reload, auth."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image
from pydantic import SecretStr

from engine.app import build_app
from engine.service import MemeService
from memebot.settings import Settings
from training.runtime import load_model

pytestmark = pytest.mark.slow


def settings(tmp_path: Path, **over: Any) -> Settings:
    base = Settings.from_env(
        {
            "MEMEBOT_CACHE_DIR": str(tmp_path / "cache"),
            "MEMEBOT_IMAGES_DIR": str(tmp_path / "no-images"),
            "MEMEBOT_DOWNLOAD_IMAGES": "0",
        }
    )
    return base.model_copy(update=over)


@asynccontextmanager
async def engine(
    model_path: Path, s: Settings
) -> AsyncIterator[tuple[aiohttp.ClientSession, MemeService, str]]:
    service = MemeService(s, load_model(model_path))
    server = TestServer(build_app(service), host="127.0.0.1", port=0)
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        try:
            yield http, service, str(server.make_url(""))
        finally:
            await server.close()


def run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coro())


def test_meme_json_and_image(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):
            r = await http.post(
                f"{url}/v1/memes", json={"template": "Two Buttons", "seed": 4, "n": 2}
            )
            assert r.status == 200, await r.text()
            body = await r.json()
            assert body["template"]["slug"] == "two-buttons" and len(body["boxes"]) == 2
            assert all(body["boxes"]) and len(body["captions"]) == 2 and body["logprob"] < 0
            assert (
                body["options"]["decoding"]["method"] == "calibrated"
                and body["options"]["seed"] == 4
            )
            assert body["model_version"].startswith("char-gru-")
            img = Image.open(io.BytesIO(base64.b64decode(body["image"]["data_base64"])))
            assert img.format == "JPEG" and body["image"]["alt_text"] == " / ".join(body["boxes"])
            again = await (
                await http.post(
                    f"{url}/v1/memes", json={"template": "two-buttons", "seed": 4, "n": 2}
                )
            ).json()
            assert again["captions"] == body["captions"]  # same seed, same caption

            r = await http.post(
                f"{url}/v1/memes",
                json={"template": "success-kid", "format": "png"},
                headers={"Accept": "image/png"},
            )
            assert r.status == 200 and r.content_type == "image/png"
            assert Image.open(io.BytesIO(await r.read())).format == "PNG"
            assert json.loads(r.headers["X-Memebot-Boxes"])

            r = await http.post(
                f"{url}/v1/memes",
                json={
                    "template": "distracted bf",
                    "boxes": 4,
                    "image": False,
                    "start": "when|my",
                    "decoding": "beam",
                    "beam_width": 3,
                },
            )
            body = await r.json()
            assert r.status == 200 and body["image"] is None
            assert (
                len(body["boxes"]) == 4
                and body["boxes"][0] == "when"
                and body["boxes"][1].startswith("my")
            )

    run(go)


def test_templates_health_ready_metrics_openapi(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, svc, url):
            t = await (await http.get(f"{url}/v1/templates", params={"q": "spongebob"})).json()
            hits = t["templates"]
            assert 0 < len(hits) <= 25
            assert all(
                "spongebob" in " ".join([x["slug"], x["name"].lower(), *x["aliases"]]) for x in hits
            )
            assert (
                hits[-1]["slug"] == "put-it-somewhere-else-patrick"
            )  # alias-only match ranks last
            assert len((await (await http.get(f"{url}/v1/templates")).json())["templates"]) == 25
            assert (await http.get(f"{url}/healthz")).status == 200
            ready = await http.get(f"{url}/readyz")
            assert ready.status == 200 and (await ready.json())["model_version"]
            assert (await ready.json())["decoder"] == svc.model.step_backend
            assert svc.model.step_backend in ("kernel", "numpy")
            await http.post(f"{url}/v1/memes", json={"template": "y-u-no", "image": False})
            m = await (await http.get(f"{url}/metrics")).text()
            for name in (
                "memebot_requests_total",
                "memebot_request_seconds_bucket",
                "memebot_batch_rows_bucket",
                "memebot_queue_depth",
                "memebot_model_info",
            ):
                assert name in m
            doc = await (await http.get(f"{url}/openapi.json")).json()
            assert doc["openapi"].startswith("3.") and "/v1/memes" in doc["paths"]

    run(go)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({}, 400, "template"),
        ({"template": ""}, 400, "template"),
        ({"template": "nope-not-a-meme"}, 404, "closest"),
        ({"template": "drake", "boxes": 0}, 400, "boxes"),
        ({"template": "drake", "boxes": "2"}, 400, "boxes"),
        ({"template": "drake", "decoding": "sideways"}, 400, "decoding"),
        ({"template": "drake", "top_p": 0}, 400, "top_p"),
        ({"template": "drake", "temperature": -1}, 400, "temperature"),
        ({"template": "drake", "n": 11}, 400, "n"),
        ({"template": "drake", "seed": -1}, 400, "seed"),
        ({"template": "drake", "format": "gif"}, 400, "format"),
        ({"template": "drake", "start": "caf\u00e9"}, 400, "start"),
        ({"template": "drake", "boxes": 3, "max_len": 5}, 400, "max_len"),
        ({"template": "drake", "colour": "red"}, 400, "colour"),
        ({"template": "drake", "image": False, "response": "image"}, 400, "image"),
        ([1, 2], 400, "body"),
    ],
)
def test_bad_inputs_name_the_field(
    tiny_model: Path, tmp_path: Path, body: Any, status: int, needle: str
) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):
            r = await http.post(f"{url}/v1/memes", json=body)
            assert r.status == status, await r.text()
            assert needle in (await r.json())["error"]
            r = await http.post(
                f"{url}/v1/memes", data=b"{not json", headers={"Content-Type": "application/json"}
            )
            assert r.status == 400 and "body" in (await r.json())["error"]

    run(go)


def test_queue_full_gives_503_with_retry_after(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path, max_queue=1, max_batch_rows=1)) as (
            http,
            _svc,
            url,
        ):
            reqs = [
                http.post(
                    f"{url}/v1/memes", json={"template": "two-buttons", "image": False, "seed": i}
                )
                for i in range(12)
            ]
            rs = await asyncio.gather(*reqs)
            codes = [r.status for r in rs]
            assert 503 in codes and 200 in codes, codes
            assert all(r.headers.get("Retry-After") == "1" for r in rs if r.status == 503)

    run(go)


def test_timeout_gives_504(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path, request_timeout=0.001)) as (
            http,
            _svc,
            url,
        ):
            r = await http.post(
                f"{url}/v1/memes",
                json={
                    "template": "two-buttons",
                    "image": False,
                    "decoding": "beam",
                    "beam_width": 16,
                },
            )
            assert r.status == 504

    run(go)


def test_reload_under_load_and_bad_artifact(tiny_model: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    meta = json.loads((other / "meta.json").read_text())
    meta["version"] = "char-gru-reloaded"
    (other / "meta.json").write_text(json.dumps(meta))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.keras").write_bytes(b"garbage")

    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):

            async def one(i: int) -> tuple[int, str]:
                r = await http.post(
                    f"{url}/v1/memes", json={"template": "y-u-no", "image": False, "seed": i}
                )
                return r.status, (await r.json()).get("model_version", "")

            load = [asyncio.ensure_future(one(i)) for i in range(40)]
            await asyncio.sleep(0.05)
            r = await http.post(f"{url}/v1/model/reload", json={"path": str(other)})
            assert r.status == 200 and (await r.json())["model_version"] == "char-gru-reloaded"
            load += [asyncio.ensure_future(one(i)) for i in range(40, 60)]
            results = await asyncio.gather(*load)
            assert all(status == 200 for status, _ in results), results
            assert {v for _, v in results[-20:]} == {"char-gru-reloaded"}

            r = await http.post(f"{url}/v1/model/reload", json={"path": str(broken)})
            body = await r.json()
            assert (
                r.status == 422
                and "checksum" in body["error"]
                and body["serving"] == "char-gru-reloaded"
            )
            r = await http.post(f"{url}/v1/model/reload", json={})
            assert r.status == 400 and "path" in (await r.json())["error"]
            ok = await http.post(f"{url}/v1/memes", json={"template": "y-u-no", "image": False})
            assert (await ok.json())["model_version"] == "char-gru-reloaded"

    run(go)


def test_auth_on_and_off(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path, engine_token=SecretStr("s3cret"))) as (
            http,
            _svc,
            url,
        ):
            body = {"template": "y-u-no", "image": False}
            assert (await http.post(f"{url}/v1/memes", json=body)).status == 401
            bad = {"Authorization": "Bearer nope"}
            assert (await http.post(f"{url}/v1/memes", json=body, headers=bad)).status == 401
            assert (await http.get(f"{url}/metrics")).status == 401
            good = {"Authorization": "Bearer s3cret"}
            assert (await http.post(f"{url}/v1/memes", json=body, headers=good)).status == 200
            assert (await http.get(f"{url}/healthz")).status == 200  # probes stay open
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):
            assert (
                await http.post(f"{url}/v1/memes", json={"template": "y-u-no", "image": False})
            ).status == 200

    run(go)


def test_concurrent_requests_share_batches_and_match_alone(
    tiny_model: Path, tmp_path: Path
) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, svc, url):

            async def one(i: int) -> list[str]:
                r = await http.post(
                    f"{url}/v1/memes", json={"template": "two-buttons", "image": False, "seed": i}
                )
                return (await r.json())["boxes"]

            alone = [await one(i) for i in range(6)]
            steps_before = svc.scheduler.steps
            together = await asyncio.gather(*(one(i) for i in range(6)))
            assert list(together) == alone
            assert svc.scheduler.steps - steps_before < sum(len("|".join(b)) + 2 for b in alone)

    run(go)
