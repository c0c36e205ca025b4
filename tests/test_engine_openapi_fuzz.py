"""The engine keeps its own contract: schemathesis, a property-based API fuzzer, reads the
engine's /openapi.json from a real `memebot engine` and runs every check it has (status codes,
content types, headers, response bodies against their schemas, valid data accepted, invalid
data refused, authentication required where the document says so, undeclared methods answered
405 with `Allow`) on a bounded number of generated requests per operation; and, directly, every
method a path does not declare answered 405 with `Allow` naming the ones it does."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from engine.openapi import openapi_document
from harness.engine import engine_process, running_engine
from harness.factories import scratch_settings

TOKEN = "fuzz-token"

# Where the document cannot say everything the engine checks, the answers it gives instead are
# named here per operation (each is documented in /openapi.json):
CONFIG = """
[[operations]]
# An artifact path that passes the schema but holds no servable model: 422, the old model
# keeps serving. Only a real artifact answers 200.
include-path = "/v1/model/reload"
checks.positive_data_acceptance.expected-statuses = [200, 422]

[[operations]]
# A caption must fit: boxes, max_len and the start text's boxes are a rule between fields
# and the template's box count (known only on the engine), answered 400 naming the field.
include-path = "/v1/memes"
checks.positive_data_acceptance.expected-statuses = [200, 400, 404]

[[operations]]
# As /v1/memes, and bytes that are not an image: 415.
include-path = "/v1/memes/upload"
checks.positive_data_acceptance.expected-statuses = [200, 400, 415]
"""


@pytest.mark.slow  # ~20 s of requests, after the tiny model
def test_every_check_passes_on_the_engines_own_document(tiny_model: Path, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    st = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config)]
    with engine_process(tiny_model, env={"MEMEBOT_ENGINE_TOKEN": TOKEN}) as engine:
        p = subprocess.run(
            [
                *st,
                "run",
                f"{engine.url}/openapi.json",
                "--checks",
                "all",  # every check schemathesis has
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--max-examples",
                "25",  # per operation and phase: bounded, ~20 s
                "--seed",
                "1",
                "--workers",
                "2",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-2000:]
    assert "Selected: 7/7" in p.stdout and "Tested: 7" in p.stdout, p.stdout[-3000:]


def test_the_document_states_the_printable_ascii_rule() -> None:
    """The rule a client must fold text for (memebot/text.py) is in the document."""
    schemas = openapi_document()["components"]["schemas"]
    for model, field in [("MemeRequest", "start"), ("MemeRequest", "template")]:
        assert schemas[model]["properties"][field]["pattern"].startswith("^[ -~]*")
    assert schemas["UploadOptions"]["properties"]["start"]["pattern"] == "^[ -~]*$"


@pytest.mark.slow
def test_an_undeclared_method_is_405_with_the_declared_ones_in_allow(
    tiny_model: Path, tmp_path: Path
) -> None:
    """Each path of the document, asked with every method it does not declare: 405, a JSON
    error like every other, and `Allow` naming what the path takes (RFC 9110)."""
    paths = openapi_document()["paths"]

    async def go() -> None:
        async with running_engine(tiny_model, scratch_settings(tmp_path)) as eng:
            for path, ops in paths.items():
                declared = {m.upper() for m in ops}
                for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - declared):
                    async with eng.http.request(method, f"{eng.url}{path}") as r:
                        assert r.status == 405, (method, path, r.status)
                        allow = {m.strip() for m in r.headers.get("Allow", "").split(",")}
                        # aiohttp answers HEAD wherever GET is served.
                        extra = {"HEAD"} if "GET" in declared else set()
                        assert allow - extra == declared, (method, path, r.headers.get("Allow"))
                        assert r.content_type == "application/json"
                        assert "error" in await r.json()

    asyncio.run(go())
