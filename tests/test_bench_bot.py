"""bench/bot.py on the tiny model: the whole /meme path through the stand-in at a small
configuration, every figure present and sane (a smoke test: the numbers are the bench's)."""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
from pathlib import Path

import pytest

from bench.bot import bench


@pytest.mark.slow
def test_a_small_run_reports_every_figure(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the bench's scratch directory (its store, settings) under the test's, not left in /tmp
    mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(
        tempfile, "mkdtemp", lambda prefix=None: mkdtemp(prefix=prefix, dir=tmp_path)
    )
    memes, votes = 2, 30
    args = argparse.Namespace(model=tiny_model, database=None, memes=memes, votes=votes)
    r = asyncio.run(bench(args))
    assert r["database"].startswith("sqlite") and r["model"] == str(tiny_model)
    per_user = max(1, memes // 8)  # the bench's 32 concurrent users each make this many
    assert r["memes_timed"] == memes + 32 * per_user and r["votes_timed"] == votes
    for key in ("meme_p50_ms", "meme_p50_ms_32", "meme_p50_ms_32_ratelimited"):
        p95 = key.replace("p50", "p95")
        assert 0 < r[key] <= r[p95] < 120_000, (key, r[key], r[p95])
    for key in ("memes_per_s_32", "votes_per_s", "cpu_ms_per_meme_32", "cpu_ms_per_vote"):
        assert math.isfinite(r[key]) and r[key] > 0, (key, r[key])
    # With Discord's rate limits on, every /meme is still answered and reacted to.
    assert r["memes_answered_ratelimited"] == r["memes_asked_ratelimited"] == 32 * per_user
    assert 0 < r["answered_s_ratelimited"] <= r["reactions_done_s_ratelimited"]
    assert r["responses_429_ratelimited"] >= 0
    assert r["loadavg_1m"] is None or r["loadavg_1m"] >= 0
