"""A server's data when the bot leaves it (retrain/guilds.py): the retention sweep against a
clock, the taste files it removes (and those it must not), and `memebot data forget-guild`,
through the console script, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.cli import assert_one_line_error
from harness.databases import with_store
from harness.factories import scratch_env, scratch_settings
from memebot.cli import main as memebot_main
from memebot.settings import REPO_ROOT
from memebot.store import NewGeneration, Store
from retrain.guilds import remove_taste_files, sweep_left_guilds

GONE = 900001
STAYS = 900002
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


async def some_data(store: Store, guild_id: int, models: Path) -> Path:
    """A meme with a vote, a setting and a taste (its file under `models`); the file's path."""
    await store.record_generation(
        NewGeneration(
            guild_id=guild_id,
            channel_id=1,
            user_id=2,
            template="drake",
            boxes=["a", "b"],
            message_id=guild_id * 10,
        )
    )
    await store.set_vote(guild_id * 10, 3, 1)
    await store.update_guild_settings(guild_id, filter_level="strict")
    taste = models / "tastes" / str(guild_id) / "1.taste"
    taste.parent.mkdir(parents=True, exist_ok=True)
    taste.write_bytes(b"taste")
    await store.add_taste_version(guild_id, base_version="b", n_votes=1, path=str(taste))
    return taste


def test_the_sweep_deletes_after_the_retention_and_not_before(db_url: str, tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path, guild_retention_days=30.0)

    async def body(store: Store) -> None:
        gone_file = await some_data(store, GONE, settings.models_dir)
        stays_file = await some_data(store, STAYS, settings.models_dir)
        await store.guild_left(GONE, T0)
        await store.guild_left(STAYS, T0 + DAY)

        assert await sweep_left_guilds(store, settings, now=T0 + 29 * DAY) == []
        assert await sweep_left_guilds(store, settings, now=T0 + 30 * DAY - timedelta(1)) == []
        # STAYS is added back before its deadline: its clock stops.
        assert await store.guild_present(STAYS)

        (done,) = await sweep_left_guilds(store, settings, now=T0 + 30 * DAY + timedelta(1))
        assert (done.guild_id, done.tastes, done.generations, done.votes) == (GONE, 1, 1, 1)
        assert not gone_file.exists() and stays_file.exists()
        assert await store.taste_versions(GONE) == []
        assert await store.generation_by_message(GONE * 10) is None
        assert (await store.guild_settings(GONE)).filter_level == "standard"
        # Nothing of the rejoined server went, however late the next sweep.
        assert await sweep_left_guilds(store, settings, now=T0 + 400 * DAY) == []
        assert await store.tally((await store.generation_by_message(STAYS * 10)).id) == (1, 0)  # type: ignore[union-attr]
        assert len(await store.taste_versions(STAYS)) == 1

    with_store(db_url, body)


def test_a_server_the_gateway_lists_is_kept_whatever_the_store_says(
    db_url: str, tmp_path: Path
) -> None:
    # The bot was added back while offline; the event saying so has not reached the store
    # yet when the first sweep runs.
    settings = scratch_settings(tmp_path, guild_retention_days=0.0)

    async def body(store: Store) -> None:
        await some_data(store, GONE, settings.models_dir)
        await store.guild_left(GONE, T0)
        assert await sweep_left_guilds(store, settings, now=T0 + DAY, present={GONE}) == []
        assert await store.guild_left_at(GONE) is None
        assert len(await store.taste_versions(GONE)) == 1

    with_store(db_url, body)


def test_a_rejoin_between_listing_and_deleting_keeps_everything(db_url: str) -> None:
    async def body(store: Store) -> None:
        await store.record_generation(
            NewGeneration(guild_id=GONE, channel_id=1, user_id=2, template="d", boxes=["a"])
        )
        await store.guild_left(GONE, T0)
        cutoff = T0 + DAY
        assert await store.guilds_left_before(cutoff) == [GONE]
        await store.guild_present(GONE)  # the rejoin, just after the sweep listed it
        assert (await store.forget_guild(GONE, left_before=cutoff)).total == 0
        assert (await store.stats(GONE)).generations == 1
        await store.guild_left(GONE, T0 + 2 * DAY)  # left again, later than the cutoff
        assert (await store.forget_guild(GONE, left_before=cutoff)).total == 0
        assert (await store.forget_guild(GONE, left_before=T0 + 3 * DAY)).generations == 1

    with_store(db_url, body)


def test_only_files_under_the_models_location_are_removed(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "t").mkdir(parents=True)
    inside = models / "t" / "1.taste"
    inside.write_bytes(b"x")
    outside = tmp_path / "elsewhere.taste"
    outside.write_bytes(b"x")
    sneaky = models / "t" / ".." / ".." / "elsewhere.taste"
    paths = (str(inside), str(outside), str(sneaky), str(models / "t" / "missing"), str(models))
    assert remove_taste_files(paths, models) == 1
    assert not inside.exists() and outside.exists()


def test_forget_guild_command(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = scratch_env(tmp_path) | {"MEMEBOT_DATABASE_URL": db_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    models = Path(env["MEMEBOT_MODELS_DIR"])

    async def setup(store: Store) -> tuple[Path, Path]:
        return await some_data(store, GONE, models), await some_data(store, STAYS, models)

    gone_file, stays_file = with_store(db_url, setup)
    # The bot is still in the server: forget-guild does not wait for a retention clock.
    assert memebot_main(["data", "forget-guild", str(GONE)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"server {GONE}: deleted 1 taste version(s), 1 meme(s), 1 vote(s) and its settings\n"
    )
    assert not gone_file.exists() and stays_file.exists()

    async def left(store: Store) -> tuple[int, int]:
        return (await store.stats(GONE)).generations, (await store.stats(STAYS)).generations

    assert with_store(db_url, left) == (0, 1)
    assert memebot_main(["data", "forget-guild", f" {GONE} "]) == 0
    assert "nothing stored; nothing deleted" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["abc", "-5", "0", "1.5", str(2**64), ""])
def test_forget_guild_bad_ids_are_one_line(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for k, v in scratch_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    assert memebot_main(["data", "forget-guild", bad]) == 2
    err = capsys.readouterr().err
    assert err == f"memebot: error: server id {bad!r}: expected the number Discord shows for it\n"


def test_forget_guild_on_an_unmigrated_store_is_one_line(tmp_path: Path) -> None:
    # The console script as a user runs it: its own process, the base install's checks.
    env = os.environ | scratch_env(tmp_path)
    p = subprocess.run(
        [sys.executable, "-m", "memebot.cli", "data", "forget-guild", "123"],
        capture_output=True,
        text=True,
        env=env | {"PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path,
        timeout=120,
    )
    assert_one_line_error(p, "has no schema", "run `memebot db upgrade`")
    assert asyncio.run(_no_tables(env["MEMEBOT_DATABASE_URL"]))


async def _no_tables(url: str) -> bool:
    from sqlalchemy import inspect

    from memebot.store import make_db

    db = make_db(url)
    try:
        async with db.connect() as conn:
            return not await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await db.dispose()


def test_forget_guild_needs_no_training_extra(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As on a base install: the training extra's modules are missing. The other data
    # commands say so; forget-guild only needs the store.
    import memebot.cli

    for k, v in (scratch_env(tmp_path) | {"MEMEBOT_DATABASE_URL": db_url}).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(memebot.cli, "_TRAIN_EXTRA_MODULES", ("memebot_no_such_module",))
    assert memebot_main(["data", "export-ratings", "--out", str(tmp_path / "r.jsonl")]) == 2
    assert "needs the training extra" in capsys.readouterr().err
    assert memebot_main(["data", "forget-guild", "42"]) == 0
    assert capsys.readouterr().out == "server 42: nothing stored; nothing deleted\n"
