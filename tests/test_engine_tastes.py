"""Every server's taste from one engine: one batch, each request's own pick, the LRU of taste
files, promotions seen without reloads, corrupt or foreign files refused."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.decoding.batch import run_jobs
from engine.decoding.jobs import CaptionRequest, RowJob
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from engine.decoding.tilt import TILT_GRAMS
from engine.schema import MemeOptions
from engine.tastes import TasteCache
from harness.engine import running_engine
from harness.factories import scratch_settings
from memebot import taste_file
from memebot.errors import ScorerError

# A stand-in of memebot/taste_file.py's files: {"base": version, "sign": +1 | -1}, a taste for
# long (+1) or short (-1) captions, and the pointer tastes/<guild>/active.json {"file": name}.


class LengthTaste:
    name = "taste"

    def __init__(self, sign: float):
        self.sign = sign

    def score(self, texts: Sequence[str], template: str = "") -> np.ndarray:
        return np.asarray([self.sign * len(t) for t in texts], dtype=np.float32)


def load_length_taste(path: Path, base_version: str, guild_id: int) -> LengthTaste:
    try:
        body = json.loads(path.read_text())
        sign = float(body["sign"])
    except (ValueError, KeyError, TypeError) as e:
        raise ScorerError(f"{path}: not a taste file ({e})") from e
    if body.get("base") != base_version:
        raise ScorerError(f"{path}: fitted on {body.get('base')}, not {base_version}")
    return LengthTaste(sign)


def read_pointer(models_dir: Path, guild_id: int) -> Path | None:
    pointer = models_dir / "tastes" / str(guild_id) / "active.json"
    if not pointer.exists():
        return None
    return pointer.parent / json.loads(pointer.read_text())["file"]


def write_taste(models_dir: Path, guild: int, name: str, body: Any, *, base: str = "") -> Path:
    """Write taste file `name` of `guild` and point its active.json at it."""
    d = models_dir / "tastes" / str(guild)
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    path.write_text(body if isinstance(body, str) else json.dumps({"base": base, **body}))
    (d / "active.json").write_text(json.dumps({"file": name}))
    return path


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def cache(models_dir: Path, clock: Clock, size: int = 8) -> TasteCache:
    return TasteCache(
        models_dir, size=size, load=load_length_taste, read_active=read_pointer, clock=clock
    )


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> LoadedModel:
    return load_model(tiny_model)


def request(seed: int, terms: Any = ()) -> CaptionRequest:
    return CaptionRequest(
        template="two-buttons",
        n_boxes=2,
        decoding=Decoding(method="calibrated"),
        seed=seed,
        n_candidates=8,
        terms=terms,
    )


def test_one_batch_each_request_picks_by_its_own_taste(model: LoadedModel, tmp_path: Path) -> None:
    clock = Clock()
    tastes = cache(tmp_path, clock)
    write_taste(tmp_path, 1, "long.json", {"sign": 1}, base=model.version)
    write_taste(tmp_path, 2, "short.json", {"sign": -1}, base=model.version)
    v = model.version
    jobs = [RowJob(model, request(11, tastes.terms(g, v))) for g in ("1", "2", "3", None)]
    run_jobs(model, jobs)  # one batch: every job steps together
    texts = [[c.text for c in j._by_row if c is not None] for j in jobs]
    assert len(texts[0]) == 8 and all(t == texts[0] for t in texts), "same seed, same rows"
    long_, short, none3, plain = (j.captions()[0] for j in jobs)
    assert long_.text == max(texts[0], key=len) and short.text == min(texts[0], key=len)
    assert len(long_.text) > len(short.text), "two tastes, two picks from the same candidates"
    # a server with no taste gets the default pick: the model's scorer alone
    assert none3.text == plain.text and "taste" not in none3.score_parts
    rows = [c for c in jobs[3]._by_row if c is not None]
    default = model.scorer.score(
        texts[0], "two-buttons", [c.logprob for c in rows], [c.chars for c in rows]
    )
    assert plain.text == texts[0][int(np.argmax(default.total))]
    assert long_.score_parts["taste"] == len(long_.text) and "well_formed" in long_.score_parts


def test_promotion_rollback_and_isolation_without_reload(
    model: LoadedModel, tmp_path: Path
) -> None:
    clock = Clock()
    tastes = cache(tmp_path, clock)
    v = model.version

    def pick(server: str, seed: int = 5) -> str:
        job = RowJob(model, request(seed, tastes.terms(server, v)))
        run_jobs(model, [job])
        return job.captions()[0].text

    write_taste(tmp_path, 1, "v1.json", {"sign": 1}, base=v)
    write_taste(tmp_path, 2, "v1.json", {"sign": 1}, base=v)
    a1, b1 = pick("1"), pick("2")
    write_taste(tmp_path, 1, "v2.json", {"sign": -1}, base=v)  # server 1 promotes a new taste
    assert pick("1") == a1, "the pointer is not looked at again within the recheck interval"
    clock.t += 2.5
    a2, b2 = pick("1"), pick("2")
    assert a2 != a1 and len(a2) < len(a1), "the promotion serves without a reload"
    assert b2 == b1, "server 1's taste change leaves server 2's caption for the seed unchanged"
    write_taste(tmp_path, 1, "v1.json", {"sign": 1}, base=v)  # a rollback: the old file again
    clock.t += 2.5
    assert pick("1") == a1 and pick("2") == b1
    (tmp_path / "tastes" / "1" / "active.json").unlink()  # the taste deleted: the default
    clock.t += 2.5
    assert "taste" not in RowJob(model, request(5, tastes.terms("1", v))).scorer.names


def test_corrupt_or_foreign_taste_keeps_the_previous_one(
    model: LoadedModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    tastes = cache(tmp_path, clock)
    v = model.version
    write_taste(tmp_path, 1, "v1.json", {"sign": 1}, base=v)
    good = tastes.get(1, v)
    assert isinstance(good, LengthTaste) and tastes.loads == 1
    caplog.set_level(logging.WARNING)
    write_taste(tmp_path, 1, "v2.json", "{not json")
    for _ in range(3):  # refused once, logged once, not read again while it stays the same
        clock.t += 2.5
        assert tastes.get(1, v) is good
    refusals = [r.getMessage() for r in caplog.records if "taste refused" in r.getMessage()]
    assert len(refusals) == 1 and "previous taste keeps serving" in refusals[0]
    assert "v2.json" in refusals[0] and "server 1" in refusals[0]
    write_taste(tmp_path, 1, "v3.json", {"sign": -1}, base="another-model")
    clock.t += 2.5
    assert tastes.get(1, v) is good and "fitted on another-model" in caplog.records[-1].message
    # A server whose first taste is corrupt gets the default, and says so.
    write_taste(tmp_path, 2, "v1.json", "\x00\x01")
    assert tastes.get(2, v) is None and "default taste keeps serving" in caplog.records[-1].message
    # A new base model: server 1's taste was fitted on the old one, so it stops serving.
    assert tastes.get(1, "next-model") is None
    # A file rewritten in place (a new mtime) is read again.
    path = write_taste(tmp_path, 1, "v3.json", {"sign": -1}, base=v)
    os.utime(path, ns=(1, 1))
    clock.t += 2.5
    again = tastes.get(1, v)
    assert isinstance(again, LengthTaste) and again.sign == -1


def test_the_lru_evicts_the_least_recently_used_server(tmp_path: Path) -> None:
    clock = Clock()
    tastes = cache(tmp_path, clock, size=2)
    for g in (1, 2, 3):
        write_taste(tmp_path, g, "t.json", {"sign": 1}, base="m")
    tastes.get(1, "m")
    tastes.get(2, "m")
    tastes.get(1, "m")  # 1 is now the most recent: 2 goes first
    tastes.get(3, "m")
    assert len(tastes) == 2 and 1 in tastes and 3 in tastes and 2 not in tastes
    assert tastes.loads == 3
    assert tastes.get(2, "m") is not None and tastes.loads == 4, "an evicted server is read again"
    with pytest.raises(ValueError, match="at least one"):
        TasteCache(tmp_path, size=0)
    # The engine's own loaders: a server with no taste under the models location: the default.
    assert TasteCache(tmp_path / "none", size=1).terms("5", "m") == ()


def test_the_service_picks_by_the_requests_server(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        s = scratch_settings(tmp_path, models_dir=tmp_path / "models")
        async with running_engine(tiny_model, s) as eng:
            svc = eng.service
            clock = Clock()
            svc.tastes = cache(s.models_dir, clock)
            v = svc.model.version
            write_taste(s.models_dir, 1, "long.json", {"sign": 1}, base=v)
            write_taste(s.models_dir, 2, "short.json", {"sign": -1}, base=v)
            rows: list[int] = []
            svc.scheduler.on_step = rows.append
            template = svc.resolve("two-buttons")

            def opts(server: str | None) -> MemeOptions:
                return MemeOptions(seed=9, n_candidates=8, image=False, server=server)

            a, b, c, plain = await asyncio.gather(
                *(svc.generate(opts(g), template) for g in ("1", "2", "3", None))
            )
            assert max(rows) > 8, "the servers' requests shared decoding steps"
            ta, tb = a.captions[0].text, b.captions[0].text
            assert len(ta) > len(tb) and a.options.server == "1"
            assert c.captions[0].text == plain.captions[0].text
            # Over HTTP: the field is in the API, and the taste shows in the score's parts.
            body = {"template": "two-buttons", "seed": 9, "n_candidates": 8, "image": False}
            async with eng.http.post(f"{eng.url}/v1/memes", json={**body, "server": "1"}) as r:
                got = await r.json()
            assert r.status == 200, got
            assert got["captions"][0]["boxes"] == a.captions[0].boxes
            assert "taste" in got["score_parts"] and got["options"]["server"] == "1"
            async with eng.http.get(f"{eng.url}/openapi.json") as r:
                spec = await r.json()
            assert "server" in json.dumps(spec["components"])

    asyncio.run(go())


def real_taste(models_dir: Path, guild: int, version: int, base: str, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, 1.0, taste_file.TASTE_BUCKETS).astype(np.float16)
    scorer = taste_file.TasteScorer(weights, 0.0, guild, base, version=version)
    path = taste_file.save_taste(taste_file.taste_file(models_dir, guild, version), scorer)
    taste_file.write_active(models_dir, guild, version)
    return path


def test_real_taste_files_and_their_refusals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    tastes = TasteCache(tmp_path, size=4, clock=clock)  # the engine's own loaders
    real_taste(tmp_path, 1, 1, "base-a", seed=1)
    first = tastes.get(1, "base-a")
    assert isinstance(first, taste_file.TasteScorer) and first.version == 1
    caplog.set_level(logging.WARNING)
    bad = real_taste(tmp_path, 1, 2, "base-a", seed=2)
    bad.write_bytes(bad.read_bytes()[:100])  # a torn file
    taste_file.write_active(tmp_path, 1, 2)
    clock.t += 2.5
    assert tastes.get(1, "base-a") is first and "v2.npz" in caplog.records[-1].message
    real_taste(tmp_path, 1, 3, "base-b", seed=3)
    clock.t += 2.5
    assert tastes.get(1, "base-a") is first and "base-b" in caplog.records[-1].message
    # another server's file copied in: refused, it is not this server's taste
    theirs = real_taste(tmp_path, 2, 1, "base-a", seed=4)
    taste_file.taste_file(tmp_path, 1, 4).write_bytes(theirs.read_bytes())
    taste_file.write_active(tmp_path, 1, 4)
    clock.t += 2.5
    assert tastes.get(1, "base-a") is first and "server 2" in caplog.records[-1].message
    # a corrupt pointer keeps the taste too; a promotion to a good file serves it
    (taste_file.taste_dir(tmp_path, 1) / "active.json").write_text("{")
    clock.t += 2.5
    assert tastes.get(1, "base-a") is first and "pointer" in caplog.records[-1].message
    real_taste(tmp_path, 1, 5, "base-a", seed=5)
    clock.t += 2.5
    fifth = tastes.get(1, "base-a")
    assert isinstance(fifth, taste_file.TasteScorer) and fifth.version == 5
    texts = ["a|b|", "when the|code works|"]
    assert not np.allclose(fifth.score(texts), first.score(texts))
    taste_file.clear_active(tmp_path, 1)  # rolled back past its first taste: the default
    clock.t += 2.5
    assert tastes.get(1, "base-a") is None


def test_a_real_taste_tilts_its_servers_requests_only(tmp_path: Path) -> None:
    tastes = TasteCache(tmp_path, size=4, tilt=60.0, clock=Clock())
    path = real_taste(tmp_path, 1, 1, "base-a", seed=1)
    scorer = taste_file.load_taste(path, base_version="base-a")
    t = tastes.tilt(1, "base-a")
    assert t is not None and t is tastes.tilt("1", "base-a")  # one object per loaded taste
    assert np.array_equal(t.weights, scorer.weights) and t.length_factor == 1.0
    assert t.strength == pytest.approx(60.0 / np.sqrt(TILT_GRAMS))
    assert tastes.tilt(2, "base-a") is None and tastes.tilt(None, "base-a") is None
    assert tastes.tilt(1, "base-b") is None  # fitted on another base model: no taste, no tilt
    # no tilt setting: the taste only picks, unless it changes lengths
    assert TasteCache(tmp_path, size=4).tilt(1, "base-a") is None
    scorer.length_factor, scorer.version = 0.7, 2
    taste_file.save_taste(taste_file.taste_file(tmp_path, 1, 2), scorer)
    taste_file.write_active(tmp_path, 1, 2)
    only_lengths = TasteCache(tmp_path, size=4).tilt(1, "base-a")
    assert only_lengths is not None and only_lengths.strength == 0.0
    assert only_lengths.length_factor == pytest.approx(0.7)


def test_the_service_tilts_the_default_style_by_the_requests_server(
    tiny_model: Path, tmp_path: Path
) -> None:
    """One candidate per caption (the bot's default style): the server's taste changes its
    captions through the tilt, and a server without a taste gets the captions of no server."""

    async def go() -> None:
        s = scratch_settings(tmp_path, models_dir=tmp_path / "models")
        s = s.model_copy(update={"taste_tilt": 60.0})
        async with running_engine(tiny_model, s) as eng:
            svc = eng.service
            svc.tastes = TasteCache(s.models_dir, size=8, tilt=s.taste_tilt)
            real_taste(s.models_dir, 1, 1, svc.model.version, seed=1)

            async def boxes(server: str | None, seed: int) -> list[str]:
                opts = MemeOptions(
                    decoding="natural", n_candidates=1, seed=seed, image=False, server=server
                )
                got = await svc.generate(opts, svc.resolve("two-buttons"))
                return got.captions[0].boxes

            seeds = range(8)
            plain = [await boxes(None, i) for i in seeds]
            assert [await boxes("3", i) for i in seeds] == plain  # no taste: as no server
            tilted = [await boxes("1", i) for i in seeds]
            assert sum(t != p for t, p in zip(tilted, plain, strict=True)) >= 4

    asyncio.run(go())
