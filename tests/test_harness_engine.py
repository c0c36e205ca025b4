"""harness/engine.py's in-process engine: a model path is loaded as `memebot engine` loads it
(the settings' decoder and crowd weight, box lengths borrowed over the catalog), a model the
test loaded itself is served untouched. On the shipped model, whose table has templates
without captions to borrow for (the tiny test models have too few templates to fit on)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.catalog import Catalog
from engine.decoding.loader import load_model
from engine.lengths import borrow_for_catalog
from harness.engine import running_engine
from harness.factories import scratch_settings
from memebot.artifact.templates import TemplateTable

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "default"


def test_a_model_path_loads_as_the_engine_loads_it(tmp_path: Path) -> None:
    s = scratch_settings(tmp_path, decoder="numpy", crowd_weight=0.0)
    want = borrow_for_catalog(TemplateTable.load(SHIPPED / "templates.json"), Catalog.load())
    assert want.borrowed  # else the check below says nothing

    async def go() -> None:
        async with running_engine(SHIPPED, s) as eng:
            model = eng.service.model
            assert model.templates.borrowed == want.borrowed
            assert model.step_backend == "numpy"  # MEMEBOT_DECODER, not the loader's default
            assert model.scorer.names == ["well_formed"]  # MEMEBOT_CROWD_WEIGHT=0
            async with eng.http.get(f"{eng.url}/readyz") as r:
                assert r.status == 200 and (await r.json())["decoder"] == "numpy"

    asyncio.run(go())


def test_a_loaded_model_is_served_as_it_was_loaded(tmp_path: Path) -> None:
    model = load_model(SHIPPED, decoder="numpy")

    async def go() -> None:
        async with running_engine(model, scratch_settings(tmp_path)) as eng:
            assert eng.service.model is model
            assert model.templates.borrowed == {}  # the caller chose to load it bare

    asyncio.run(go())
