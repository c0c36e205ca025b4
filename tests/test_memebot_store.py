"""The rating store against real databases: each test runs on a SQLite file and on PostgreSQL
(tests/conftest.py::db_url creates, migrates and drops a throwaway database)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import func, select

from harness.databases import with_store
from memebot.errors import UsageError
from memebot.settings import Settings
from memebot.store import GuildSettings, NewGeneration, Reconciled, Store, make_db, upgrade
from memebot.store.db import SQLITE_BUSY_TIMEOUT_MS
from memebot.store.rules import wanted_votes
from memebot.store.tables import VoteRow

T = TypeVar("T")

GUILD = 2**63 - 1  # Discord ids are 64-bit: the largest must round-trip
OTHER_GUILD = 412_345_678_901_234_567


def new(
    message_id: int | None,
    *,
    user: int = 7,
    guild: int | None = GUILD,
    template: str = "drake",
    created_at: datetime | None = None,
    model_version: str | None = "v1",
    channel: int = 55,
) -> NewGeneration:
    return NewGeneration(
        guild_id=guild,
        channel_id=channel,
        user_id=user,
        template=template,
        boxes=["top text", "bottom text"],
        options={"style": "calibrated", "start_text": ""},
        seed=2**63 - 1,
        model_version=model_version,
        timings={"caption_ms": 12.5, "render_ms": 4.0},
        message_id=message_id,
        created_at=created_at,
    )


async def vote_rows(store: Store) -> int:
    async with store.db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(VoteRow))).scalar_one())


def test_generation_round_trip(db_url: str) -> None:
    async def body(store: Store) -> None:
        gid = await store.record_generation(new(None, user=2**63 - 2))
        assert await store.generation_by_message(2**63 - 3) is None
        assert await store.attach_message(gid, 2**63 - 3)
        assert not await store.attach_message(gid + 1000, 1)
        info = await store.generation_by_message(2**63 - 3)
        assert info is not None
        assert (info.id, info.guild_id, info.user_id, info.message_id) == (
            gid,
            GUILD,
            2**63 - 2,
            2**63 - 3,
        )
        assert info.boxes == ["top text", "bottom text"]
        assert info.options == {"style": "calibrated", "start_text": ""}
        assert info.timings == {"caption_ms": 12.5, "render_ms": 4.0}
        assert (info.seed, info.model_version, info.template) == (2**63 - 1, "v1", "drake")
        assert info.created_at.tzinfo is not None
        assert abs(info.created_at - datetime.now(UTC)) < timedelta(minutes=1)
        assert (info.up, info.down) == (0, 0)
        assert await store.generation(gid) == info

    with_store(db_url, body)


def test_votes_latest_wins_retract_and_duplicates(db_url: str) -> None:
    async def body(store: Store) -> None:
        gid = await store.record_generation(new(100))
        assert await store.set_vote(100, 1, 1)
        assert await store.set_vote(100, 1, 1)  # duplicate event: still one vote
        assert await store.tally(gid) == (1, 0)
        assert await store.set_vote(100, 1, -1)  # switched: the latest wins
        assert await store.tally(gid) == (0, 1)
        # Removing the stale 👍 after switching keeps the 👎.
        assert not await store.retract_vote(100, 1, 1)
        assert await store.votes(gid) == {1: -1}
        assert await store.retract_vote(100, 1, -1)
        assert not await store.retract_vote(100, 1, -1)  # duplicate removal: no-op
        assert await store.tally(gid) == (0, 0)
        assert await store.set_vote(100, 2, 1)
        assert await store.set_vote(100, 3, -1)
        info = await store.generation_by_message(100)
        assert info is not None and (info.up, info.down, info.score) == (1, 1, 0)
        assert info.upvote_share == 0.5

    with_store(db_url, body)


def test_votes_on_unknown_messages_are_ignored(db_url: str) -> None:
    async def body(store: Store) -> None:
        gid = await store.record_generation(new(None))  # followup not sent yet
        assert not await store.set_vote(200, 1, 1)
        assert not await store.retract_vote(200, 1, 1)
        assert await vote_rows(store) == 0
        await store.attach_message(gid, 200)
        assert await store.set_vote(200, 1, 1)
        assert await store.tally(gid) == (1, 0)
        with pytest.raises(ValueError, match="vote value"):
            await store.set_vote(200, 1, 2)

    with_store(db_url, body)


def test_concurrent_votes_on_one_message_are_all_counted(db_url: str) -> None:
    """100 users x 10 duplicate events each, all in flight at once, through two Store
    instances (two bot processes/shards on one database)."""

    async def body(store: Store) -> None:
        gid = await store.record_generation(new(300))
        other = Store.from_url(db_url)
        try:
            events = [
                (store if user % 2 else other).set_vote(300, user, 1 if user % 3 else -1)
                for user in range(100)
                for _ in range(10)
            ]
            random.Random(1).shuffle(events)
            assert all(await asyncio.gather(*events))
        finally:
            await other.close()
        expected = {user: 1 if user % 3 else -1 for user in range(100)}
        assert await store.votes(gid) == expected
        assert await store.tally(gid) == (66, 34)

    with_store(db_url, body)


def test_1000_interleaved_reaction_events_give_exact_counts(db_url: str) -> None:
    """Adds and removes of 👍/👎 from 100 users on 5 memes (and one unknown message), each
    user's events in order, users concurrent; the store must match a model of the rules."""
    rng = random.Random(10)
    messages = [401, 402, 403, 404, 405]
    events = [
        (rng.choice([*messages, 999]), rng.randrange(100), rng.choice([1, -1]), rng.random() < 0.6)
        for _ in range(1000)
    ]
    model: dict[tuple[int, int], int] = {}
    for message, user, value, add in events:
        if message == 999:
            continue
        if add:
            model[message, user] = value
        elif model.get((message, user)) == value:
            del model[message, user]

    async def body(store: Store) -> None:
        ids = {m: await store.record_generation(new(m)) for m in messages}

        async def user_events(user: int) -> None:
            for message, u, value, add in events:
                if u != user:
                    continue
                if add:
                    assert await store.set_vote(message, u, value) == (message != 999)
                else:
                    await store.retract_vote(message, u, value)

        await asyncio.gather(*(user_events(u) for u in range(100)))
        for m in messages:
            want = {u: v for (mm, u), v in model.items() if mm == m}
            assert await store.votes(ids[m]) == want
            up = sum(1 for v in want.values() if v > 0)
            assert await store.tally(ids[m]) == (up, len(want) - up)
        assert await vote_rows(store) == len(model)

    with_store(db_url, body)


def test_reconcile_makes_votes_match_reactions(db_url: str) -> None:
    async def body(store: Store) -> None:
        gid = await store.record_generation(new(500))
        for user, value in {1: 1, 2: -1, 3: 1, 4: -1, 5: 1}.items():
            await store.set_vote(500, user, value)
        # 1 still 👍; 2 still 👎; 3 removed theirs; 4 has both (keeps 👎); 5 switched to 👎;
        # 6 and 7 voted while the bot was down; 8 has both and no stored vote (+1).
        result = await store.reconcile(gid, up={1, 4, 6, 8}, down={2, 4, 5, 7, 8})
        assert result == Reconciled(added=3, changed=1, removed=1)
        assert await store.votes(gid) == {1: 1, 2: -1, 4: -1, 5: -1, 6: 1, 7: -1, 8: 1}
        assert await store.reconcile(gid, up={1, 4, 6, 8}, down={2, 4, 5, 7, 8}) == Reconciled()
        assert (await store.reconcile(gid, up=set(), down=set())).removed == 7
        assert await store.tally(gid) == (0, 0)
        # The meme was deleted (/forget-me) between listing and reconciling: nothing to do.
        await store.forget_user(7)
        assert await store.reconcile(gid, up={1}, down={2}) == Reconciled()
        assert await vote_rows(store) == 0

    with_store(db_url, body)


def test_wanted_votes_rule() -> None:
    assert wanted_votes({1, 2, 3}, {3, 4, 5}, {3: -1, 5: 1, 9: 1}) == {
        1: 1,
        2: 1,
        3: -1,  # in both: stored vote kept
        4: -1,
        5: -1,  # only 👎 now: the reaction wins over the stored 👍
    }
    assert wanted_votes({1}, {1}, {}) == {1: 1}


def test_recent_generations(db_url: str) -> None:
    now = datetime.now(UTC)

    async def body(store: Store) -> None:
        await store.record_generation(new(601, created_at=now - timedelta(days=3)))
        b = await store.record_generation(new(602, created_at=now - timedelta(hours=2)))
        c = await store.record_generation(new(603, created_at=now - timedelta(hours=1)))
        await store.record_generation(new(None, created_at=now))  # never posted
        await store.set_vote(603, 1, -1)
        recent = await store.recent_generations(now - timedelta(days=1), limit=10)
        assert [g.id for g in recent] == [c, b]
        assert (recent[0].up, recent[0].down) == (0, 1)
        assert [g.id for g in await store.recent_generations(now - timedelta(days=1), 1)] == [c]

    with_store(db_url, body)


def test_forget_user(db_url: str) -> None:
    async def body(store: Store) -> None:
        mine = await store.record_generation(new(701, user=42))
        theirs = await store.record_generation(new(702, user=43))
        await store.set_vote(701, 43, 1)  # someone else's vote on my meme
        await store.set_vote(701, 42, 1)
        await store.set_vote(702, 42, -1)
        await store.set_vote(702, 44, 1)
        assert await store.forget_user(42) == (2, 1)
        assert await store.generation(mine) is None
        assert await store.votes(mine) == {}  # cascaded, not only hidden
        assert await store.votes(theirs) == {44: 1}
        assert await vote_rows(store) == 1
        assert await store.forget_user(42) == (0, 0)

    with_store(db_url, body)


def test_forgotten_user_reactions_on_older_memes_are_no_votes(db_url: str) -> None:
    async def body(store: Store) -> None:
        older = await store.record_generation(new(711, user=50))
        await store.set_vote(711, 42, 1)
        assert await store.forget_user(42) == (1, 0)
        # Their reaction is still on the message: neither a live event nor reconciliation
        # brings the vote back.
        assert not await store.set_vote(711, 42, 1)
        assert await store.reconcile(older, {42, 43}, set()) == Reconciled(added=1)
        assert await store.votes(older) == {43: 1}
        # Memes made after /forget-me: their votes count again.
        newer = await store.record_generation(new(712, user=50))
        assert await store.set_vote(712, 42, -1)
        assert await store.reconcile(newer, {44}, {42}) == Reconciled(added=1)
        assert await store.votes(newer) == {42: -1, 44: 1}
        # Forgetting again moves the time: the newer meme is now older than the request.
        await store.forget_user(42)
        assert await store.reconcile(newer, {44}, {42}) == Reconciled()
        assert await store.votes(newer) == {44: 1}

    with_store(db_url, body)


def test_leaderboard_ordering_and_filters(db_url: str) -> None:
    now = datetime.now(UTC)
    # message: (template, guild, age in hours, ups, downs)
    memes = {
        801: ("drake", GUILD, 1, 3, 0),  # net 3, share 1.0
        802: ("drake", GUILD, 2, 4, 1),  # net 3, share 0.8
        803: ("drake", GUILD, 3, 5, 2),  # net 3, share 0.71
        804: ("pooh", GUILD, 50, 6, 0),  # net 6 but two days old
        805: ("pooh", GUILD, 4, 1, 0),  # net 1
        806: ("pooh", GUILD, 5, 1, 0),  # net 1, share 1, same as 805 but older: first
        807: ("drake", GUILD, 1, 0, 2),  # net -2
        808: ("drake", GUILD, 1, 0, 0),  # no votes: not on the board
        809: ("drake", OTHER_GUILD, 1, 9, 0),  # another guild
    }

    async def body(store: Store) -> None:
        for m, (template, guild, age, ups, downs) in memes.items():
            await store.record_generation(
                new(m, template=template, guild=guild, created_at=now - timedelta(hours=age))
            )
            for u in range(ups):
                await store.set_vote(m, u, 1)
            for u in range(downs):
                await store.set_vote(m, 100 + u, -1)

        def messages(entries: list) -> list[int | None]:
            return [e.message_id for e in entries]

        assert messages(await store.top(GUILD)) == [804, 801, 802, 803, 806, 805, 807]
        assert messages(await store.top(GUILD, limit=2)) == [804, 801]
        assert messages(await store.top(GUILD, template="pooh")) == [804, 806, 805]
        since = now - timedelta(days=1)
        assert messages(await store.top(GUILD, template="drake", since=since)) == [
            801,
            802,
            803,
            807,
        ]
        assert messages(await store.top(None, limit=1)) == [809]
        top = (await store.top(GUILD, limit=1))[0]
        assert (top.up, top.down, top.template) == (6, 0, "pooh")

    with_store(db_url, body)


def test_stats(db_url: str) -> None:
    now = datetime.now(UTC)

    async def body(store: Store) -> None:
        empty = await store.stats(GUILD)
        assert (empty.generations, empty.votes, empty.upvote_share) == (0, 0, None)
        await store.record_generation(new(901, created_at=now - timedelta(hours=1)))
        await store.record_generation(new(902, created_at=now, model_version="v2"))
        await store.record_generation(new(903, guild=OTHER_GUILD, model_version="v9"))
        for user, value in [(1, 1), (2, 1), (3, -1)]:
            await store.set_vote(901, user, value)
        await store.set_vote(902, 1, 1)
        await store.set_vote(903, 1, -1)
        stats = await store.stats(GUILD)
        assert (stats.generations, stats.votes, stats.up, stats.down) == (2, 4, 3, 1)
        assert stats.upvote_share == 0.75
        assert stats.last_model_version == "v2"
        everywhere = await store.stats(None)
        assert (everywhere.generations, everywhere.votes) == (3, 5)

    with_store(db_url, body)


def test_top_and_stats_count_only_the_channels_given(db_url: str) -> None:
    now = datetime.now(UTC)
    PRIVATE = 66  # a channel the viewer cannot see

    async def body(store: Store) -> None:
        await store.record_generation(new(911, created_at=now - timedelta(hours=1)))
        await store.record_generation(
            new(912, channel=PRIVATE, created_at=now, model_version="secret")
        )
        await store.set_vote(911, 1, 1)
        for user in (1, 2, 3):
            await store.set_vote(912, user, 1)
        assert [g.message_id for g in await store.top(GUILD)] == [912, 911]
        assert [g.message_id for g in await store.top(GUILD, channels={55})] == [911]
        assert [g.message_id for g in await store.top(GUILD, channels={55, PRIVATE})] == [912, 911]
        assert await store.top(GUILD, channels=set()) == []
        seen = await store.stats(GUILD, channels=[55])
        assert (seen.generations, seen.votes, seen.up, seen.last_model_version) == (1, 1, 1, "v1")
        nothing = await store.stats(GUILD, channels=())
        assert (nothing.generations, nothing.votes, nothing.last_model_version) == (0, 0, None)
        assert (await store.stats(GUILD)).generations == 2

    with_store(db_url, body)


def test_guild_settings_defaults_and_updates(db_url: str) -> None:
    async def body(store: Store) -> None:
        assert await store.guild_settings(GUILD) == GuildSettings(guild_id=GUILD)
        s = await store.update_guild_settings(GUILD, filter_level="strict")
        assert (s.filter_level, s.default_style, s.allowed_channel_ids) == ("strict", None, ())
        assert s.updated_at is not None
        s = await store.update_guild_settings(GUILD, allowed_channel_ids=[2**62, 5, 5])
        assert (s.filter_level, s.allowed_channel_ids) == ("strict", (5, 2**62))
        await store.update_guild_settings(GUILD, default_style="beam")
        stored = await store.guild_settings(GUILD)
        assert (stored.filter_level, stored.default_style, stored.allowed_channel_ids) == (
            "strict",
            "beam",
            (5, 2**62),
        )
        assert (await store.guild_settings(OTHER_GUILD)).filter_level == "standard"
        with pytest.raises(UsageError, match="filter_level='loud'"):
            await store.update_guild_settings(GUILD, filter_level="loud")
        with pytest.raises(UsageError, match="colour"):
            await store.update_guild_settings(GUILD, colour="red")
        with pytest.raises(UsageError, match="allowed_channel_ids"):
            await store.update_guild_settings(GUILD, allowed_channel_ids=["general"])
        assert await store.guild_settings(GUILD) == stored  # refused changes left no trace

    with_store(db_url, body)


def test_model_versions(db_url: str) -> None:
    async def body(store: Store) -> None:
        assert await store.active_model_version() is None
        assert await store.model_versions() == []
        v1 = await store.record_model_version(
            "v1", path="models/v1", metrics={"val_loss": 1.5}, created_by="cli", activate=True
        )
        assert v1.active and v1.metrics == {"val_loss": 1.5} and v1.created_by == "cli"
        v2 = await store.record_model_version("v2", path="models/v2", parent="v1")
        assert not v2.active
        assert (await store.active_model_version()) == v1
        await store.activate_model_version("v2")
        active = await store.active_model_version()
        assert active is not None and (active.version, active.parent) == ("v2", "v1")
        await store.activate_model_version("v1")  # rollback
        versions = await store.model_versions()
        assert [(v.version, v.active) for v in versions] == [("v2", False), ("v1", True)]
        with pytest.raises(UsageError, match="'v1' is already recorded"):
            await store.record_model_version("v1", path="elsewhere")
        with pytest.raises(UsageError, match="unknown model version 'v3'"):
            await store.activate_model_version("v3")
        assert (await store.active_model_version()) is not None

    with_store(db_url, body)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"MEMEBOT_DATABASE_URL": "sqlite+aiosqlite:////srv/memebot/votes.db"},
            "sqlite+aiosqlite:////srv/memebot/votes.db",
        ),
        (
            {"MEMEBOT_DATABASE_URL": "postgresql+asyncpg://bot@db/memes"},
            "postgresql+asyncpg://bot@db/memes",
        ),
    ],
)
def test_database_url_setting(env: dict[str, str], expected: str) -> None:
    assert Settings.from_env(env).database_url == expected


def test_database_url_default_is_var_beside_cwd() -> None:
    url = Settings.from_env({}).database_url
    assert url.startswith("sqlite+aiosqlite:///") and url.endswith("/var/memebot.db")


@pytest.mark.parametrize("bad", ["postgres://x/y", "mysql://x/y", "memebot.db"])
def test_database_url_setting_rejects_other_drivers(bad: str) -> None:
    with pytest.raises(UsageError, match="MEMEBOT_DATABASE_URL"):
        Settings.from_env({"MEMEBOT_DATABASE_URL": bad})


@pytest.mark.parametrize("foreign_keys", [True, False])
def test_sqlite_connection_pragmas(tmp_path: Path, foreign_keys: bool) -> None:
    async def pragmas() -> tuple[str, int, int]:
        db = make_db(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", foreign_keys=foreign_keys)
        try:
            async with db.connect() as conn:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
                busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
                fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
        finally:
            await db.dispose()
        return mode, busy, fks

    assert asyncio.run(pragmas()) == ("wal", SQLITE_BUSY_TIMEOUT_MS, int(foreign_keys))


def test_sqlite_file_directory_is_created(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state' / 'deeper' / 'memebot.db'}"
    asyncio.run(upgrade(url))
    assert (tmp_path / "state" / "deeper" / "memebot.db").is_file()


def test_deleted_memes_count_nowhere_and_cleared_reactions_retract(db_url: str) -> None:
    async def body(store: Store) -> None:
        since = datetime.now(UTC) - timedelta(hours=1)
        kept = await store.record_generation(new(901))
        gone = await store.record_generation(new(902, model_version="v-gone"))
        purged = await store.record_generation(new(903))
        for mid in (901, 902, 903):
            for user, value in ((1, 1), (2, 1), (3, -1)):
                assert await store.set_vote(mid, user, value)
        before = await store.stats(GUILD)
        assert (before.generations, before.votes, before.last_model_version) == (3, 9, "v1")
        assert await store.mark_deleted([902]) == 1
        assert await store.mark_deleted([903, 904]) == 1  # 904 is no meme
        assert await store.mark_deleted([902]) == 0  # already marked
        assert await store.mark_deleted([]) == 0
        after = await store.stats(GUILD)
        assert (after.generations, after.votes, after.up, after.down) == (1, 3, 2, 1)
        assert after.last_model_version == "v1"
        assert [g.id for g in await store.top(GUILD)] == [kept]
        assert [g.id for g in await store.top(None)] == [kept]
        assert [g.id for g in await store.recent_generations(since)] == [kept]
        assert [g.id for g in await store.rated_generations()] == [kept]
        info = await store.generation(gone)
        assert info is not None and info.deleted_at is not None  # the row stays, marked
        assert info.deleted_at >= since
        still = await store.generation(kept)
        assert still is not None and still.deleted_at is None
        assert not await store.set_vote(902, 4, 1), "no new vote on a deleted meme"
        assert await store.votes(gone) == {1: 1, 2: 1, 3: -1}  # kept, counted nowhere
        assert await store.votes(purged) == {1: 1, 2: 1, 3: -1}

        # Reactions cleared: one emoji's votes, then all of them.
        assert await store.clear_votes(901, 1) == 2
        assert await store.votes(kept) == {3: -1}
        assert await store.clear_votes(901, 1) == 0
        assert await store.clear_votes(901) == 1
        assert await store.votes(kept) == {}
        assert await store.clear_votes(904) == 0  # no meme
        with pytest.raises(ValueError, match="must be"):
            await store.clear_votes(901, 2)

    with_store(db_url, body)
