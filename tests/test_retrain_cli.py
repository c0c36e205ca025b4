"""`memebot retrain`, `memebot model`, `memebot data export-ratings` from a shell: one-line
errors for what a user can fix, the run queued once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from harness.disks import small_disk
from memebot.cli import main
from memebot.store import NewGeneration, Store, upgrade


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_data: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'memebot.db'}"
    monkeypatch.setenv("MEMEBOT_DATABASE_URL", url)
    monkeypatch.setenv("MEMEBOT_QUEUE_URL", f"sqlite:///{tmp_path / 'queue.db'}")
    monkeypatch.setenv("MEMEBOT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MEMEBOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MEMEBOT_DATA_DIR", str(tiny_data))
    asyncio.run(upgrade(url))
    return url


def rate(url: str) -> None:
    async def go() -> None:
        async with Store.from_url(url) as store:
            for m, (boxes, value) in enumerate(
                [
                    (["when my dog eats pizza", "again"], 1),
                    (["my boss loves pizza", "every single day"], 1),
                    (["WHEN MY DOG EATS THE HOMEWORK", "my mom again"], 1),  # lowercased
                    (["this one is bad", "really bad"], -1),
                ],
                1,
            ):
                await store.record_generation(
                    NewGeneration(
                        channel_id=1, user_id=1, template="two-buttons", boxes=boxes, message_id=m
                    )
                )
                for user in (10, 11, 12):
                    await store.set_vote(m, user, value)

    asyncio.run(go())


def test_retrain_needs_new_ratings_then_queues_one_run(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["retrain"]) == 2
    err = capsys.readouterr().err
    assert err == "memebot: error: no new ratings: nothing to retrain on\n"
    rate(env)
    assert main(["retrain", "--mode", "full"]) == 0
    assert "run #1 (full) queued" in capsys.readouterr().out
    assert main(["retrain"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memebot: error: retrain run #1 (full by shell) is already queued")
    assert main(["retrain", "--status"]) == 0
    assert "run #1 (full) queued: waiting for a worker" in capsys.readouterr().out


def test_model_info_and_rollback_without_versions(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "info"]) == 0
    assert "no versions recorded yet" in capsys.readouterr().out
    assert main(["model", "rollback"]) == 2
    assert capsys.readouterr().err == (
        "memebot: error: no previous model version to roll back to\n"
    )


@pytest.mark.parametrize("argv", [["model", "info"], ["retrain"], ["worker", "--burst"]])
def test_an_unmigrated_store_is_one_line(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MEMEBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    monkeypatch.setenv("MEMEBOT_QUEUE_URL", f"sqlite:///{tmp_path / 'queue.db'}")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("memebot: error: database sqlite+aiosqlite:///")
    assert err.endswith("has no schema: run `memebot db upgrade`\n") and err.count("\n") == 1


def test_export_ratings(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rate(env)
    out = tmp_path / "curated.jsonl"
    assert main(["data", "export-ratings", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "negative" in printed and f"wrote 4 rows to {out}" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["kind"] for r in rows) == ["negative", "positive", "positive", "positive"]
    assert {tuple(r["boxes"]) for r in rows if r["kind"] == "positive"} >= {
        ("when my dog eats pizza", "again")
    }
    assert main(["data", "export-ratings", "--out", str(tmp_path / "no" / "dir.jsonl")]) == 2
    assert "--out" in capsys.readouterr().err


def test_export_ratings_on_a_full_disk(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """More curated rows than a 64 KB filesystem holds: one line naming the file, exit 1, and
    neither the file nor its temp file left behind."""

    async def many() -> None:
        async with Store.from_url(env) as store:
            for m in range(1, 801):
                boxes = [f"when my dog eats pizza number {m}", f"and my boss sees it on day {m}"]
                await store.record_generation(
                    NewGeneration(
                        channel_id=1, user_id=1, template="two-buttons", boxes=boxes, message_id=m
                    )
                )
                for user in (10, 11, 12):
                    await store.set_vote(m, user, 1)

    asyncio.run(many())
    with small_disk(tmp_path / "full", 64 * 1024) as full:
        out = full / "curated.jsonl"
        assert main(["data", "export-ratings", "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("memebot: error: No space left on device writing ")
        assert err.count("\n") == 1 and str(full) in err
        assert list(full.iterdir()) == []
