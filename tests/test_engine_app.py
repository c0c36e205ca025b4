"""The engine over real HTTP on loopback: happy paths, every bad input, capacity, reload, auth."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
import logging
import os
import shutil
import struct
import time
import urllib.request
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from yarl import URL

from engine.decoding.jobs import CaptionRequest
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.scoring import Scorer
from engine.service import MemeService
from harness.engine import running_engine, start_engine_process, stop_engine_process
from harness.factories import StepGate, captions_alone
from harness.factories import scratch_settings as settings
from memebot.decoding import DEFAULT_CANDIDATES
from memebot.settings import Settings

pytestmark = pytest.mark.slow


@asynccontextmanager
async def engine(
    model: Path | LoadedModel, s: Settings
) -> AsyncIterator[tuple[aiohttp.ClientSession, MemeService, str]]:
    """harness.engine's in-process engine, as the (client session, service, URL) these tests
    use."""
    async with running_engine(model, s) as eng:
        yield eng.http, eng.service, eng.url


def run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coro())


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value from /metrics text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def until(cond: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Wait for a condition the server reaches on its own (a request admitted, queued...)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not cond():
        assert loop.time() < end, f"never happened: {what}"
        await asyncio.sleep(0.001)


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


class Longest:
    """A score term preferring long captions, keeping what it was asked to score."""

    name = "length"

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def score(self, texts: Sequence[str], template: str) -> np.ndarray:
        self.seen.append(list(texts))
        return np.array([len(t) for t in texts], dtype=np.float32)


def test_best_of_n_returns_the_best_scored_candidate_with_its_score(
    tiny_model: Path, tmp_path: Path
) -> None:
    """A score term on the served model decides which candidate each caption is; the reply
    carries every chosen caption's score and its parts; same seed, same captions."""
    term = Longest()
    model = dataclasses.replace(load_model(tiny_model), scorer=Scorer(((term, 10.0),)))

    async def go() -> None:
        async with engine(model, settings(tmp_path)) as (http, _svc, url):
            body = {"template": "two-buttons", "image": False, "seed": 8, "n": 2, "n_candidates": 5}
            r = await http.post(f"{url}/v1/memes", json=body)
            assert r.status == 200, await r.text()
            got = await r.json()
            (texts,) = term.seen
            assert len(texts) == 10
            best = {max(texts[:5], key=len), max(texts[5:], key=len)}
            assert {"".join(b + "|" for b in c["boxes"]) for c in got["captions"]} == best
            assert got["options"]["n_candidates"] == 5
            for c in got["captions"]:
                parts = c["score_parts"]
                assert set(parts) == {"well_formed", "length"} and parts["well_formed"] < 0
                assert c["score"] == pytest.approx(parts["well_formed"] + 10 * parts["length"])
            assert got["captions"][0]["score"] >= got["captions"][1]["score"]
            assert (got["score"], got["score_parts"], got["boxes"]) == (
                got["captions"][0]["score"],
                got["captions"][0]["score_parts"],
                got["captions"][0]["boxes"],
            )
            again = await (await http.post(f"{url}/v1/memes", json=body)).json()
            assert again["captions"] == got["captions"]
            one = await (
                await http.post(f"{url}/v1/memes", json=body | {"n": 1, "n_candidates": 1})
            ).json()
            assert len(term.seen[-1]) == 1 and one["options"]["n_candidates"] == 1
            beams = set()
            for seed in range(8):
                b = body | {"n": 1, "seed": seed, "decoding": "beam", "beam_width": 6}
                beam = await (await http.post(f"{url}/v1/memes", json=b)).json()
                assert beam["options"]["n_candidates"] == 6  # its final beams
                beams.add(tuple(beam["boxes"]))
            assert len(beams) > 1, "beam gave every seed the same caption"

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
            for query, field in (({"limit": "99"}, "limit"), ({"limit": "x"}, "limit")):
                r = await http.get(f"{url}/v1/templates", params=query)
                assert r.status == 400 and (await r.json())["field"] == field
            assert (await http.get(f"{url}/healthz")).status == 200
            ready = await http.get(f"{url}/readyz")
            assert ready.status == 200 and (await ready.json())["model_version"]
            assert (await ready.json())["decoder"] == svc.model.step_backend
            assert svc.model.step_backend in ("kernel", "numpy")
            before = await (await http.get(f"{url}/metrics")).text()
            r = await http.post(f"{url}/v1/memes", json={"template": "y-u-no", "image": False})
            assert r.status == 200
            m = await (await http.get(f"{url}/metrics")).text()
            for name in (
                "memebot_requests_total",
                "memebot_request_seconds_bucket",
                "memebot_batch_rows_bucket",
                "memebot_queue_depth",
                "memebot_model_info",
            ):
                assert name in m
            ok = {"route": "/v1/memes", "status": "200"}
            assert metric(m, "memebot_requests_total", **ok) == (
                metric(before, "memebot_requests_total", **ok) + 1
            )
            assert metric(m, "memebot_batch_rows_count") > metric(
                before, "memebot_batch_rows_count"
            )
            assert metric(m, "memebot_batch_rows_sum") >= metric(m, "memebot_batch_rows_count")
            assert metric(m, "memebot_request_seconds_count", route="/v1/memes") >= 1
            assert metric(m, "memebot_model_info", version=svc.model.version) == 1
            doc = await (await http.get(f"{url}/openapi.json")).json()
            assert doc["openapi"].startswith("3.") and "/v1/memes" in doc["paths"]
            assert "/v1/memes/upload" in doc["paths"]
            assert doc["components"]["schemas"]["MemeRequest"]["required"] == ["template"]
            assert "n_candidates" in doc["components"]["schemas"]["MemeRequest"]["properties"]

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
        ({"template": "drake", "n_candidates": 0}, 400, "n_candidates: must be at least 1"),
        ({"template": "drake", "n_candidates": 17}, 400, "n_candidates: must be at most 16"),
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
    """One request decoding (held at its first step), one waiting: the next is refused."""
    model = load_model(tiny_model)
    gate = StepGate(model)

    async def go() -> None:
        s = settings(tmp_path, max_queue=1, max_batch_rows=1)
        async with engine(model, s) as (http, svc, url):

            async def one(i: int) -> aiohttp.ClientResponse:
                body = {"template": "two-buttons", "image": False, "seed": i}
                return await http.post(f"{url}/v1/memes", json=body)

            try:
                first = asyncio.ensure_future(one(0))
                await asyncio.to_thread(gate.waiting.wait, 60)  # decoding, held in its step
                second = asyncio.ensure_future(one(1))
                await until(lambda: svc.scheduler.queue_depth == 1, "second request queued")
                refused = await one(2)
                assert refused.status == 503 and refused.headers["Retry-After"] == "1"
                assert "capacity" in (await refused.json())["error"]
            finally:
                gate.opened.set()
            assert [(await first).status, (await second).status] == [200, 200]

    run(go)


def test_timeout_gives_504(tiny_model: Path, tmp_path: Path) -> None:
    """A request whose decoding cannot finish in MEMEBOT_REQUEST_TIMEOUT (its steps are held
    until after the deadline) is answered 504; the engine serves the next one."""
    model = load_model(tiny_model)
    gate = StepGate(model)

    async def go() -> None:
        # 1.5 s, not less: the second request must finish within it on a starved CI machine.
        async with engine(model, settings(tmp_path, request_timeout=1.5)) as (http, _svc, url):
            body = {"template": "two-buttons", "image": False}
            try:
                r = await http.post(f"{url}/v1/memes", json=body)
                assert r.status == 504 and "1.5 s" in (await r.json())["error"]
            finally:
                gate.opened.set()
            again = await http.post(f"{url}/v1/memes", json=body)
            assert again.status == 200

    run(go)


def test_reload_in_flight_finish_on_the_old_model(
    tiny_model: Path, other_tiny_model: Path, tmp_path: Path
) -> None:
    """Requests admitted before a reload finish on the old model (its version, its captions);
    requests after it get the new one. The old model's steps are held until both are queued."""
    # what POST /v1/memes asks for by default: the best of DEFAULT_CANDIDATES per caption
    reqs = [CaptionRequest("y-u-no", 2, seed=i, n_candidates=DEFAULT_CANDIDATES) for i in range(4)]
    want_old = [c[0] for c in captions_alone(load_model(tiny_model), reqs)]
    want_new = [c[0] for c in captions_alone(load_model(other_tiny_model), reqs)]
    assert want_old != want_new  # the two models tell themselves apart
    model = load_model(tiny_model)
    gate = StepGate(model)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.keras").write_bytes(b"garbage")

    async def go() -> None:
        async with engine(model, settings(tmp_path)) as (http, svc, url):

            async def one(i: int) -> tuple[int, str, list[str]]:
                r = await http.post(
                    f"{url}/v1/memes", json={"template": "y-u-no", "image": False, "seed": i}
                )
                body = await r.json()
                return r.status, body.get("model_version", ""), body.get("boxes", [])

            old_version = svc.model.version
            try:
                before = [asyncio.ensure_future(one(i)) for i in range(4)]
                sched = svc.scheduler
                await until(lambda: sched.queue_depth + sched.in_flight == 4, "4 admitted")
                r = await http.post(f"{url}/v1/model/reload", json={"path": str(other_tiny_model)})
                assert (await r.json()) == {
                    "model_version": "char-gru-other",
                    "previous": old_version,
                }
                after = [asyncio.ensure_future(one(i)) for i in range(4)]
                await until(lambda: sched.queue_depth + sched.in_flight == 8, "4 more admitted")
                assert not any(t.done() for t in before)
            finally:
                gate.opened.set()
            assert await asyncio.gather(*before) == [(200, old_version, b) for b in want_old]
            assert await asyncio.gather(*after) == [(200, "char-gru-other", b) for b in want_new]

            r = await http.post(f"{url}/v1/model/reload", json={"path": str(broken)})
            body = await r.json()
            assert r.status == 422 and "checksum" in body["error"]
            assert body["serving"] == "char-gru-other" and body["field"] == "path"
            r = await http.post(f"{url}/v1/model/reload", json={})
            assert r.status == 400 and (await r.json())["field"] == "path"
            for bad in (f"/tmp/{'a' * 300}/model", "/tmp/a\x00b"):  # no file can have this name
                r = await http.post(f"{url}/v1/model/reload", json={"path": bad})
                body = await r.json()
                assert r.status == 400 and body["field"] == "path", body
                assert body["error"].startswith("path: ")
            ok = await http.post(f"{url}/v1/memes", json={"template": "y-u-no", "image": False})
            assert (await ok.json())["model_version"] == "char-gru-other"

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
    arch_model: Path, tmp_path: Path
) -> None:
    """Continuous batching (for every decoded architecture): requests in flight together share
    model steps and get the captions they get alone."""

    async def go() -> None:
        async with engine(arch_model, settings(tmp_path)) as (http, svc, url):

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


def test_every_method_over_http(arch_model: Path, tmp_path: Path) -> None:
    """Each decoding method through the engine, on each decoded architecture's model."""
    from memebot.decoding import METHODS

    async def go() -> None:
        async with engine(arch_model, settings(tmp_path)) as (http, svc, url):
            ready = await (await http.get(f"{url}/readyz")).json()
            assert ready["decoder"] == svc.model.step_backend
            assert ready["model_version"].startswith(svc.model.arch + "-")
            for method in METHODS:
                body = {"template": "y-u-no", "image": False, "seed": 3, "decoding": method}
                r = await http.post(f"{url}/v1/memes", json=body | {"top_k": 5, "top_p": 0.9})
                assert r.status == 200, (method, await r.text())
                got = await r.json()
                assert len(got["boxes"]) == 2 and all(got["boxes"]), (method, got)
                assert got["options"]["decoding"]["method"] == method

    run(go)


def request_bytes(path: str, body: bytes, *headers: bytes, length: int | None = None) -> bytes:
    head = [
        f"POST {path} HTTP/1.1".encode(),
        b"Host: test",
        b"Connection: close",
        b"Content-Length: %d" % (len(body) if length is None else length),
        *headers,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def raw_http(url: str, data: bytes, *, hang_up: bool = False) -> bytes:
    """Send bytes as they are; read the answer until the server closes (or hang up at once)."""
    u = URL(url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    try:
        writer.write(data)
        await writer.drain()
        if hang_up:
            return b""
        return await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()


JSON_OK = b'{"template": "y-u-no", "image": false}'


@pytest.mark.parametrize(
    ("case", "data", "status"),
    [
        (
            "authorization not UTF-8, no token set",
            request_bytes("/v1/memes", JSON_OK, b"Authorization: Bearer \xff\xfe\x80"),
            200,
        ),
        (
            "authorization not UTF-8, token set",
            request_bytes("/v1/memes", JSON_OK, b"Authorization: Bearer \xff\xfe\x80"),
            401,
        ),
        (
            "unknown charset",
            request_bytes("/v1/memes", JSON_OK, b"Content-Type: application/json; charset=foo"),
            200,
        ),
        ("30,000 [", request_bytes("/v1/memes", b"[" * 30_000), 400),
        ("body not UTF-8", request_bytes("/v1/memes", b'{"template": "\xff"}'), 400),
        (
            "reload path component of 300 characters",
            request_bytes("/v1/model/reload", b'{"path": "/tmp/' + b"a" * 300 + b'"}'),
            400,
        ),
        ("client closes mid-body", request_bytes("/v1/memes", b'{"templ', length=100), None),
        ("JSON body over 64 KiB", request_bytes("/v1/memes", b" " * 70_000 + JSON_OK), 413),
        (
            "malformed multipart",
            request_bytes(
                "/v1/memes/upload",
                b"--xyz\r\nno headers here",
                b"Content-Type: multipart/form-data; boundary=abc",
            ),
            400,
        ),
        (
            "multipart without a boundary",
            request_bytes("/v1/memes/upload", b"x", b"Content-Type: multipart/form-data"),
            400,
        ),
    ],
)
def test_client_mistakes_are_4xx_without_traceback(
    tiny_model: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    data: bytes,
    status: int | None,
) -> None:
    token = SecretStr("s3cret") if case.endswith(", token set") else None

    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path, engine_token=token)) as (http, _, url):
            answer = await raw_http(url, data, hang_up=status is None)
            auth = {"Authorization": "Bearer s3cret"}
            if status is None:  # wait until the server has seen the client go
                await until_metric(http, url, auth, "499")
            else:
                assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:300]
            m = await (await http.get(f"{url}/metrics", headers=auth)).text()
        assert not any(
            f.name == "memebot_requests" and s.labels["status"].startswith("5")
            for f in text_string_to_metric_families(m)
            for s in f.samples
        ), m

    run(go)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def until_metric(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], status: str
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while True:
        m = await (await http.get(f"{url}/metrics", headers=headers)).text()
        if metric(m, "memebot_requests_total", status=status) >= 1:
            return
        assert loop.time() < end, f"no request counted with status {status}"
        await asyncio.sleep(0.005)


def test_stalled_body_is_answered_408_and_closed(tiny_model: Path, tmp_path: Path) -> None:
    """Headers and part of a body, then nothing: the server answers 408 after
    MEMEBOT_BODY_TIMEOUT and closes the connection (reading until EOF returns)."""

    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path, body_timeout=0.3)) as (_http, _, url):
            partial = request_bytes("/v1/memes", b'{"template": "y-', length=200)
            answer = await raw_http(url, partial.replace(b"Connection: close", b"X-A: b"))
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"MEMEBOT_BODY_TIMEOUT" in answer

    run(go)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"template": "drake", "start": "y" * 81}, "start"),  # no room left for box 2
        ({"template": "drake", "start": "y" * 150}, "start"),
        ({"template": "drake", "start": "a|b|c"}, "start"),  # three boxes for two
        ({"template": "drake", "start": "|b"}, "start"),  # an empty box
        ({"template": "expanding brain", "max_len": 5}, "max_len"),  # four boxes
        ({"template": "drake", "max_len": 3}, "max_len"),
    ],
)
def test_caption_rule_checked_against_the_template(
    tiny_model: Path, tmp_path: Path, body: dict[str, Any], field: str
) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):
            r = await http.post(f"{url}/v1/memes", json=body)
            assert r.status == 400, await r.text()
            got = await r.json()
            assert got["field"] == field and got["error"].startswith(f"{field}: ")

    run(go)


def test_a_transformer_cuts_max_len_to_its_positions(
    tiny_transformer: Path, tmp_path: Path
) -> None:
    """max_len is an upper bound: a transformer writes at most its positions (96), and a start
    that leaves no room within them is the request's mistake, answered 400."""

    async def go() -> None:
        async with engine(tiny_transformer, settings(tmp_path)) as (http, svc, url):
            assert svc.model.max_chars == 96
            body = {"template": "y-u-no", "image": False, "max_len": 200, "seed": 1}
            r = await http.post(f"{url}/v1/memes", json={**body, "start": "a" * 90})
            assert r.status == 200, await r.text()
            got = await r.json()
            assert got["boxes"][0].startswith("a" * 90)
            assert sum(len(b) + 1 for b in got["boxes"]) <= 96
            r = await http.post(f"{url}/v1/memes", json={**body, "start": "a" * 100})
            assert r.status == 400, await r.text()
            got = await r.json()
            assert (
                got["field"] == "start"
                and "this model writes at most 96 characters" in (got["error"])
            )

    run(go)


def test_caption_rule_holds_at_the_limits(tiny_model: Path, tmp_path: Path) -> None:
    """The longest start that fits, and the shortest max_len: every box closed, non-empty,
    within max_len; the start is used lowercased and echoed so."""

    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):
            cases: list[dict[str, Any]] = [
                {"template": "drake", "start": "Y" * 79, "seed": 1},
                {"template": "expanding brain", "max_len": 8, "seed": 2},
                {"template": "drake", "start": "Hello|", "max_len": 9, "seed": 3},
            ]
            for body in cases:
                r = await http.post(f"{url}/v1/memes", json={**body, "image": False})
                assert r.status == 200, await r.text()
                got = await r.json()
                boxes, max_len = got["boxes"], body.get("max_len", 82)
                assert all(boxes) and sum(len(b) + 1 for b in boxes) <= max_len, boxes
                assert got["options"]["start"] == str(body.get("start", "")).lower()
                assert "|".join(boxes).startswith(got["options"]["start"].rstrip("|"))

    run(go)


def test_explicit_body_fields_win_over_accept(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):
            meme = f"{url}/v1/memes"
            r = await http.post(
                meme, json={"template": "y-u-no", "response": "json"}, headers={"Accept": "image/*"}
            )
            assert r.status == 200 and r.content_type == "application/json"
            r = await http.post(meme, json={"template": "y-u-no"}, headers={"Accept": "image/png"})
            assert r.status == 200 and r.content_type == "image/png"  # Accept fills the format
            assert Image.open(io.BytesIO(await r.read())).format == "PNG"
            r = await http.post(
                meme, json={"template": "y-u-no", "format": "png"}, headers={"Accept": "image/jpeg"}
            )
            assert r.status == 406 and (await r.json())["field"] == "format"
            r = await http.post(
                meme, json={"template": "y-u-no", "format": "webp"}, headers={"Accept": "image/*"}
            )
            assert r.status == 200 and r.content_type == "image/webp"
            r = await http.post(
                meme, json={"template": "y-u-no", "image": False}, headers={"Accept": "image/*"}
            )
            assert r.status == 400 and (await r.json())["field"] == "image"

    run(go)


def png_bytes(size: tuple[int, int] = (96, 64), *, noise: bool = False) -> bytes:
    img = (
        Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
        if noise
        else Image.new("RGB", size, (200, 40, 40))
    )
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1x1 PNG whose header declares width x height (a decompression bomb)."""
    data = bytearray(png_bytes((1, 1)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def form(image: bytes | None, options: Any = None) -> aiohttp.FormData:
    f = aiohttp.FormData()
    if image is not None:
        f.add_field("image", image, filename="upload.png", content_type="image/png")
    if options is not None:
        text = options if isinstance(options, str) else json.dumps(options)
        f.add_field("options", text, content_type="application/json")
    return f


def test_upload_is_captioned_on_its_own_image(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):
            up = f"{url}/v1/memes/upload"
            r = await http.post(up, data=form(png_bytes((300, 200)), {"seed": 3}))
            assert r.status == 200, await r.text()
            got = await r.json()
            assert len(got["boxes"]) == 2 and all(got["boxes"])  # top and bottom by default
            assert got["template"]["slug"] == "upload" and got["template"]["box_count"] == 2
            img = Image.open(io.BytesIO(base64.b64decode(got["image"]["data_base64"])))
            assert img.size == (300, 200)  # drawn on the upload, not on a template
            red = img.convert("RGB").getpixel((150, 100))
            assert isinstance(red, tuple) and red[0] > 150  # the upload's red shows through
            r = await http.post(
                up,
                data=form(png_bytes(), {"boxes": 3, "format": "png", "response": "image"}),
            )
            assert r.status == 200 and r.content_type == "image/png"
            assert len(json.loads(r.headers["X-Memebot-Boxes"])) == 3

    run(go)


@pytest.mark.parametrize(
    ("make", "status", "field"),
    [
        (lambda: form(b"hello, not an image"), 415, "image"),
        (lambda: form(png_bytes((64, 64), noise=True)), 413, "image"),  # over 2 KiB
        (lambda: form(os.urandom(200_000)), 413, "image"),  # refused from Content-Length
        (lambda: form(bomb_png()), 400, "image"),
        (lambda: form(png_bytes((400, 300), noise=True)[:1500]), 400, "image"),  # truncated
        (lambda: form(None, {"boxes": 2}), 400, "image"),  # no image part
        (lambda: form(png_bytes(), {"template": "drake"}), 400, "options.template"),
        (lambda: form(png_bytes(), {"boxes": 9}), 400, "options.boxes"),
        (lambda: form(png_bytes(), "{not json"), 400, "options"),
        (lambda: b'{"image": "x"}', 415, "body"),  # not multipart
    ],
)
def test_bad_uploads_name_the_part(
    tiny_model: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    make: Callable[[], Any],
    status: int,
    field: str,
) -> None:
    async def go() -> None:
        s = settings(tmp_path, max_upload_bytes=2048)
        async with engine(tiny_model, s) as (http, _svc, url):
            r = await http.post(f"{url}/v1/memes/upload", data=make())
            assert r.status == status, await r.text()
            assert (await r.json())["field"] == field

    run(go)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/v1/memes", request_bytes("/v1/memes", b'{"templ', length=5000)),
        ("/v1/model/reload", request_bytes("/v1/model/reload", b'{"pa', length=5000)),
        (
            "/v1/memes/upload",
            request_bytes(
                "/v1/memes/upload",
                b'--xx\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
                b"\r\n\x89P",
                b"Content-Type: multipart/form-data; boundary=xx",
                length=5000,
            ),
        ),
    ],
)
def test_a_client_leaving_mid_body_is_one_log_line(
    tiny_model: Path, tmp_path: Path, path: str, data: bytes
) -> None:
    """`memebot engine` as users run it: the departure is one line in its log, no traceback."""
    log_path = tmp_path / "engine.log"
    with log_path.open("wb") as out:
        eng = start_engine_process(tiny_model, output=out, env={"MEMEBOT_LOG_LEVEL": "INFO"})
        try:
            asyncio.run(raw_http(eng.url, data, hang_up=True))
            end = time.monotonic() + 30
            while "client left during" not in log_path.read_text():
                assert time.monotonic() < end, log_path.read_text()
                time.sleep(0.02)
            time.sleep(0.3)  # anything aiohttp would log after it has had its turn
            with urllib.request.urlopen(f"{eng.url}/healthz", timeout=5) as r:
                assert r.status == 200  # the engine goes on
        finally:
            stop_engine_process(eng.proc)
    text = log_path.read_text()
    lines = [ln for ln in text.splitlines() if "client left during" in ln]
    assert len(lines) == 1 and lines[0].endswith(
        f"client left during POST {path} (Connection lost)"
    )
    assert "Traceback" not in text and "ERROR" not in text, text


def test_templates_page_through_the_catalog(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, svc, url):
            seen: list[str] = []
            offset = 0
            while True:
                params = {"limit": "25", "offset": str(offset)}
                page = await (await http.get(f"{url}/v1/templates", params=params)).json()
                assert page["total"] == len(svc.catalog)
                if not page["templates"]:
                    break
                seen += [t["slug"] for t in page["templates"]]
                offset += 25
            assert seen == [t.slug for t in svc.catalog.templates], "every template once, in order"
            q = await (await http.get(f"{url}/v1/templates", params={"q": "spongebob"})).json()
            assert q["total"] == len(q["templates"]) < len(svc.catalog)
            r = await http.get(f"{url}/v1/templates", params={"offset": "-1"})
            assert r.status == 400 and (await r.json())["field"] == "offset"

    run(go)


def test_a_written_caption_is_rendered_as_is(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):
            body = {"template": "two-buttons", "text": "Top Text|bottom TEXT", "seed": 1}
            r = await http.post(f"{url}/v1/memes", json=body | {"format": "png"})
            assert r.status == 200, await r.text()
            got = await r.json()
            assert got["boxes"] == ["Top Text", "bottom TEXT"], "case kept, nothing decoded"
            assert got["image"]["alt_text"] == "Top Text / bottom TEXT"
            written = base64.b64decode(got["image"]["data_base64"])
            # The template's capitals are not applied: the same words in capitals draw
            # differently.
            r = await http.post(
                f"{url}/v1/memes", json=body | {"format": "png", "text": "TOP TEXT|BOTTOM TEXT"}
            )
            assert base64.b64decode((await r.json())["image"]["data_base64"]) != written
            one = await (await http.post(f"{url}/v1/memes", json=body | {"text": "only"})).json()
            assert one["boxes"] == ["only", ""]
            for text, needle in (
                ("a|b|c", "boxes"),
                ("|", "no text"),
                ("caf\u00e9", "printable ASCII"),
            ):
                r = await http.post(f"{url}/v1/memes", json=body | {"text": text})
                assert r.status == 400 and (await r.json())["field"] == "text", text
                assert needle in (await r.json())["error"], text

    run(go)


def test_a_multipart_part_with_broken_headers_is_400(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with engine(tiny_model, settings(tmp_path)) as (http, _svc, url):
            bound = "4bbb43756433833462b7de382ee5b6f6"
            r = await http.post(
                f"{url}/v1/memes/upload",
                data=f"--{bound}\r\n[[{{}}]]--{bound}--\r\n".encode(),
                headers={"Content-Type": f"multipart/form-data; boundary={bound}"},
            )
            assert r.status == 400 and (await r.json())["field"] == "body"
            assert "not valid multipart" in (await r.json())["error"]

    run(go)
