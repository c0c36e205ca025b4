"""Alembic migrations of the rating store, on a SQLite file and on PostgreSQL: head has exactly
the models' schema, downgrade/upgrade round-trips, `memebot db` and `alembic` both work."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from harness.databases import pg_available, postgres_url
from harness.skips import skip_or_fail
from memebot.cli import main as memebot_main
from memebot.settings import REPO_ROOT
from memebot.store import NewGeneration, Store, current, downgrade, make_db, upgrade
from memebot.store.migrate import head_revision
from memebot.store.tables import Base

TABLES = {
    "generations",
    "votes",
    "guild_settings",
    "model_versions",
    "forgotten_users",
    "retrain_runs",
    "guilds",
    "taste_versions",
}


def schema_diff(url: str) -> list[Any]:
    """What autogenerate would change to make the database match the models."""

    def diff(conn: Connection) -> list[Any]:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)

    async def go() -> list[Any]:
        db = make_db(url)
        try:
            async with db.connect() as conn:
                return await conn.run_sync(diff)
        finally:
            await db.dispose()

    return asyncio.run(go())


def table_names(url: str) -> set[str]:
    async def go() -> set[str]:
        db = make_db(url)
        try:
            async with db.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_head_has_exactly_the_tables_schema(db_url: str) -> None:
    assert asyncio.run(current(db_url)) == head_revision()
    assert schema_diff(db_url) == []
    assert table_names(db_url) == TABLES | {"alembic_version"}


def test_compare_sees_a_missing_schema(blank_db_url: str) -> None:
    # The check above can fail: on an empty database it reports every table as missing.
    added = {d[1].name for d in schema_diff(blank_db_url) if d[0] == "add_table"}
    assert added == TABLES


def test_downgrade_base_then_upgrade_head_round_trips(db_url: str) -> None:
    asyncio.run(downgrade(db_url, "base"))
    assert asyncio.run(current(db_url)) is None
    assert table_names(db_url) <= {"alembic_version"}
    asyncio.run(upgrade(db_url))
    asyncio.run(upgrade(db_url))  # the bot runs it at every start: a no-op at head
    assert asyncio.run(current(db_url)) == head_revision()
    assert schema_diff(db_url) == []

    async def use(store: Store) -> tuple[int, int]:
        gid = await store.record_generation(
            NewGeneration(channel_id=1, user_id=2, template="drake", boxes=["a"], message_id=3)
        )
        await store.set_vote(3, 4, 1)
        return await store.tally(gid)

    async def go() -> tuple[int, int]:
        async with Store.from_url(db_url) as store:
            return await use(store)

    assert asyncio.run(go()) == (1, 0)


def test_memebot_db_commands(blank_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    head = head_revision()
    assert memebot_main(["db", "current", "--url", blank_db_url]) == 0
    assert "empty (no schema)" in capsys.readouterr().out
    assert memebot_main(["db", "upgrade", "--url", blank_db_url]) == 0
    assert f"{head} (head)" in capsys.readouterr().out
    assert memebot_main(["db", "downgrade", "base", "--url", blank_db_url]) == 0
    assert "empty" in capsys.readouterr().out
    assert memebot_main(["db", "upgrade", head or "head", "--url", blank_db_url]) == 0
    capsys.readouterr()
    assert memebot_main(["db", "current", "--url", blank_db_url]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{head} (head)")


def test_alembic_command_line_with_the_repo_ini(blank_db_url: str) -> None:
    # Its own process, as a user runs it: the command configures logging from alembic.ini.
    ini = str(REPO_ROOT / "alembic.ini")
    cmd = [sys.executable, "-m", "alembic", "-c", ini, "-x", f"url={blank_db_url}"]
    p = subprocess.run([*cmd, "upgrade", "head"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert asyncio.run(current(blank_db_url)) == head_revision()
    assert schema_diff(blank_db_url) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["db", "current", "--url", "mysql://localhost/memes"], "use one of sqlite+aiosqlite"),
        (["db", "upgrade", "--url", "not a url"], "is not a URL"),
        (
            ["db", "upgrade", "--url", "postgresql+asyncpg://u:hunter2@127.0.0.1:1/memes"],
            "database postgresql+asyncpg://u:***@127.0.0.1:1/memes: ",
        ),
    ],
)
def test_memebot_db_bad_urls_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert memebot_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("memebot: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err and "hunter2" not in err


def test_memebot_db_unknown_revision(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert memebot_main(["db", "downgrade", "nosuchrev", "--url", db_url]) == 2
    err = capsys.readouterr().err
    assert "revision" in err and "nosuchrev" in err and err.count("\n") == 1
    assert asyncio.run(current(db_url)) == head_revision()  # nothing was changed


def test_concurrent_upgrades_on_postgresql_take_turns() -> None:
    # Several shards start together and each migrates at start: an advisory lock makes them
    # take turns (without it both create the tables and one fails). Shards share a database
    # server, so this is PostgreSQL's case (SQLite is for one process).
    async def go() -> None:
        if not await pg_available():
            skip_or_fail("PostgreSQL is not running at 127.0.0.1:5432")
        async with postgres_url() as url:
            await asyncio.gather(*(upgrade(url) for _ in range(3)))
            assert await current(url) == head_revision()
            async with Store.from_url(url) as store:  # the schema is complete and usable
                await store.record_generation(
                    NewGeneration(channel_id=1, user_id=2, template="drake", boxes=["a"])
                )

    asyncio.run(go())


def test_tastes_migration_keeps_runs_and_round_trips(blank_db_url: str) -> None:
    # A store with runs from before tastes: they become base runs, a taste run can then be
    # queued beside a base one, and going back down drops only what the older schema lacks.
    before = "62e52be382fe"

    async def go() -> None:
        await upgrade(blank_db_url, before)
        async with Store.from_url(blank_db_url) as store, store.db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO retrain_runs (status, mode, stage, progress, gate,"
                    " in_progress, created_at) VALUES ('running', 'finetune', 'training',"
                    " '{}', '{}', true, CURRENT_TIMESTAMP)"
                )
            )
        await upgrade(blank_db_url)
        async with Store.from_url(blank_db_url) as store:
            (old,) = await store.runs()
            assert (old.kind, old.status) == ("base", "running")
            assert await store.current_run() == old
            taste = await store.create_run("finetune", kind="taste", guild_id=5)
            await store.add_taste_version(5, base_version="v1", n_votes=20, blob=b"x")
            assert await store.current_run("taste", guild_id=5) == taste
        await downgrade(blank_db_url, before)
        async with Store.from_url(blank_db_url) as store, store.db.connect() as conn:
            ids = (await conn.execute(text("SELECT id FROM retrain_runs"))).scalars().all()
            assert ids == [old.id]  # the taste run is gone, the base run kept
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert not names & {"guilds", "taste_versions"}
        await upgrade(blank_db_url)

    asyncio.run(go())
    assert schema_diff(blank_db_url) == []
