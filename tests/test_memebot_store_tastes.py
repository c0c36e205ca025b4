"""Guild tastes and the guild lifecycle in the store, on a SQLite file and on PostgreSQL: taste
versions and their rollback chain, one active taste per guild, what taste curation reads, taste
runs beside base runs, when the bot left a guild, and deleting a guild's data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from harness.databases import with_store
from memebot.errors import UsageError
from memebot.store import NewGeneration, NoTaste, RunInProgress, Store
from memebot.store.tables import TasteVersionRow, VoteRow

GUILD = 2**63 - 1
OTHER = 412_345_678_901_234_567


def meme(message_id: int, *, guild: int | None = GUILD, user: int = 7) -> NewGeneration:
    return NewGeneration(
        guild_id=guild,
        channel_id=55,
        user_id=user,
        template="drake",
        boxes=["top", "bottom"],
        message_id=message_id,
    )


def test_versions_number_per_guild_and_roll_back_along_the_chain(db_url: str) -> None:
    async def body(store: Store) -> None:
        assert await store.active_taste(GUILD) is None
        v1 = await store.add_taste_version(
            GUILD, base_version="base-1", n_votes=24, heldout_auc=0.61, blob=b"\x00\x01"
        )
        assert (v1.version, v1.active, v1.previous_version) == (1, True, None)
        assert v1.blob == b"\x00\x01" and v1.path is None and v1.heldout_auc == 0.61
        other = await store.add_taste_version(OTHER, base_version="base-1", n_votes=30, path="o")
        assert other.version == 1  # numbered per guild
        v2 = await store.add_taste_version(
            GUILD,
            base_version="base-1",
            n_votes=40,
            path="/models/tastes/g/2.taste",
            metrics={"gate": {"auc": [0.61, 0.7]}},
            run_id=9,
            created_by="alice",
        )
        assert (v2.version, v2.previous_version, v2.run_id, v2.created_by) == (2, 1, 9, "alice")
        assert v2.metrics == {"gate": {"auc": [0.61, 0.7]}}
        # A candidate the gate kept out: recorded for its numbers, the active one stays.
        v3 = await store.add_taste_version(
            GUILD, base_version="base-1", n_votes=41, blob=b"x", activate=False
        )
        assert (v3.version, v3.active, v3.previous_version) == (3, False, 2)
        active = await store.active_taste(GUILD)
        assert active is not None and active.version == 2
        assert [v.version for v in await store.taste_versions(GUILD)] == [3, 2, 1]

        back = await store.rollback_taste(GUILD)
        assert back is not None and (back.version, back.active) == (1, True)
        v4 = await store.add_taste_version(GUILD, base_version="base-2", n_votes=50, blob=b"y")
        assert v4.previous_version == 1  # what was active when it was promoted
        assert (await store.rollback_taste(GUILD)).version == 1  # type: ignore[union-attr]
        # From the first taste back to none of its own: the default taste serves it.
        assert await store.rollback_taste(GUILD) is None
        assert await store.active_taste(GUILD) is None
        with pytest.raises(NoTaste, match="no taste of its own"):
            await store.rollback_taste(GUILD)
        # The other guild was never touched.
        assert await store.active_taste(OTHER) == other
        assert [t.guild_id for t in await store.active_tastes()] == [OTHER]

        again = await store.activate_taste_version(GUILD, 4)
        assert again.active and again.base_version == "base-2"
        with pytest.raises(NoTaste, match="no taste version 99"):
            await store.activate_taste_version(GUILD, 99)
        assert await store.taste_version(GUILD, 3) == v3
        assert await store.taste_version(OTHER, 3) is None

    with_store(db_url, body)


def test_a_version_needs_a_path_or_a_blob(db_url: str) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(UsageError, match="path or a blob"):
            await store.add_taste_version(GUILD, base_version="b", n_votes=1)
        assert await store.taste_versions(GUILD) == []

    with_store(db_url, body)


def test_one_active_taste_per_guild_under_concurrent_recordings(db_url: str) -> None:
    async def body(store: Store) -> None:
        made = await asyncio.gather(
            *(
                store.add_taste_version(GUILD, base_version="b", n_votes=i, blob=b"t")
                for i in range(4)
            ),
            store.add_taste_version(OTHER, base_version="b", n_votes=1, blob=b"t"),
        )
        assert sorted(v.version for v in made[:4]) == [1, 2, 3, 4]
        async with store.db.connect() as conn:
            actives = await conn.execute(
                select(TasteVersionRow.guild_id, func.count())
                .where(TasteVersionRow.active.is_(True))
                .group_by(TasteVersionRow.guild_id)
            )
            assert dict(actives.tuples().all()) == {GUILD: 1, OTHER: 1}
        # Each was promoted over the one active before it: the chain has no gaps.
        chain = {v.version: v.previous_version for v in await store.taste_versions(GUILD)}
        assert sorted(chain.values(), key=lambda p: p or 0) == [None, *sorted(chain)[:-1]]

    with_store(db_url, body)


def test_guild_rated_memes_has_each_vote_of_that_guild_only(db_url: str) -> None:
    async def body(store: Store) -> None:
        a = await store.record_generation(meme(1, user=100))
        await store.record_generation(meme(2))  # no votes: not a rated meme
        b = await store.record_generation(meme(3, user=101))
        await store.record_generation(meme(4, guild=OTHER))
        await store.record_generation(meme(5, guild=None))  # a DM
        for message, user, value in [(1, 100, 1), (1, 200, -1), (1, 300, 1), (3, 200, -1)]:
            await store.set_vote(message, user, value)
        for message in (4, 5):
            await store.set_vote(message, 200, 1)
        rated = await store.guild_rated_memes(GUILD)
        assert [(r.generation.id, r.votes) for r in rated] == [
            (a, {100: 1, 200: -1, 300: 1}),
            (b, {200: -1}),
        ]
        assert (rated[0].generation.up, rated[0].generation.down) == (2, 1)

        # /forget-me: the user's votes go; a vote row that slipped in for a meme made before
        # the request (a reconciliation racing it) is still no vote for curation.
        await store.forget_user(300)
        async with store.db.begin() as conn:
            await conn.execute(
                insert(VoteRow).values(
                    generation_id=b, user_id=300, value=1, updated_at=datetime.now(UTC)
                )
            )
        rated = await store.guild_rated_memes(GUILD)
        assert [(r.generation.id, r.votes) for r in rated] == [
            (a, {100: 1, 200: -1}),
            (b, {200: -1}),
        ]
        # A meme made after the request: the user's vote counts again.
        await asyncio.sleep(0.01)
        c = await store.record_generation(meme(6))
        await store.set_vote(6, 300, 1)
        assert (await store.guild_rated_memes(GUILD))[-1].votes == {300: 1}
        assert (await store.guild_rated_memes(GUILD))[-1].generation.id == c

    with_store(db_url, body)


def test_taste_runs_one_per_guild_beside_the_base_run(db_url: str) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(UsageError, match="guild_id is needed"):
            await store.create_run("finetune", kind="taste")
        with pytest.raises(UsageError, match="kind 'lora'"):
            await store.create_run("finetune", kind="lora", guild_id=GUILD)
        base = await store.create_run("finetune", requested_by="owner")
        mine = await store.create_run(
            "finetune", kind="taste", guild_id=GUILD, requested_by="alice"
        )
        theirs = await store.create_run("finetune", kind="taste", guild_id=OTHER)
        assert (base.kind, mine.kind, theirs.kind) == ("base", "taste", "taste")
        with pytest.raises(RunInProgress, match="one taste run per server") as e:
            await store.create_run("finetune", kind="taste", guild_id=GUILD, requested_by="bob")
        assert e.value.run == mine and "taste run #" in str(e.value)
        with pytest.raises(RunInProgress, match="one run at a time"):
            await store.create_run("finetune")
        assert await store.current_run() == base
        assert await store.current_run("taste", guild_id=GUILD) == mine
        assert await store.current_run("taste", guild_id=12345) is None
        assert [r.id for r in await store.runs(kind="taste")] == [theirs.id, mine.id]
        assert [r.id for r in await store.runs(guild_id=GUILD)] == [mine.id]
        await store.finish_run(mine.id, "succeeded")
        again = await store.create_run("finetune", kind="taste", guild_id=GUILD)
        assert again.id > mine.id

    with_store(db_url, body)


def test_votes_since_counts_one_guild(db_url: str) -> None:
    async def body(store: Store) -> None:
        await store.record_generation(meme(1))
        await store.record_generation(meme(2, guild=OTHER))
        start = datetime.now(UTC) - timedelta(seconds=1)
        await store.set_vote(1, 10, 1)
        await store.set_vote(1, 11, -1)
        await store.set_vote(2, 10, 1)
        assert await store.votes_since(None) == 3
        assert await store.votes_since(start, guild_id=GUILD) == 2
        assert await store.votes_since(None, guild_id=OTHER) == 1
        assert await store.votes_since(datetime.now(UTC) + timedelta(hours=1), guild_id=GUILD) == 0

    with_store(db_url, body)


def test_guild_lifecycle_left_rejoined_and_due(db_url: str) -> None:
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    async def body(store: Store) -> None:
        assert await store.guild_left_at(GUILD) is None
        assert not await store.guild_present(GUILD)  # never left: nothing to clear
        await store.guild_left(GUILD, t0)
        await store.guild_left(GUILD, t0 + timedelta(days=3))  # a repeated event: no reset
        assert await store.guild_left_at(GUILD) == t0
        await store.guild_left(OTHER, t0 + timedelta(days=10))
        assert await store.guilds_left_before(t0) == []
        assert await store.guilds_left_before(t0 + timedelta(days=11)) == [GUILD, OTHER]
        assert await store.guild_present(GUILD)  # rejoined: the clock stops
        assert await store.guild_left_at(GUILD) is None
        assert await store.guilds_left_before(t0 + timedelta(days=11)) == [OTHER]
        await store.guild_left(GUILD, t0 + timedelta(days=20))  # left again: a new clock
        assert await store.guild_left_at(GUILD) == t0 + timedelta(days=20)

        # What the bot compares with the servers the gateway lists at start-up.
        assert await store.known_guilds() == set()
        await store.record_generation(meme(1))
        await store.record_generation(meme(2, guild=None))  # a DM: no server
        await store.update_guild_settings(OTHER, filter_level="off")
        await store.add_taste_version(5, base_version="b", n_votes=1, blob=b"t")
        assert await store.known_guilds() == {GUILD, OTHER, 5}

    with_store(db_url, body)


def test_forget_guild_deletes_its_data_and_nothing_else(db_url: str) -> None:
    async def body(store: Store) -> None:
        g1 = await store.record_generation(meme(1))
        await store.record_generation(meme(2))
        o = await store.record_generation(meme(3, guild=OTHER))
        for message, user in [(1, 10), (1, 11), (2, 10), (3, 10)]:
            await store.set_vote(message, user, 1)
        await store.update_guild_settings(GUILD, filter_level="strict")
        await store.update_guild_settings(OTHER, filter_level="off")
        await store.add_taste_version(GUILD, base_version="b", n_votes=3, path="/m/g/1.taste")
        await store.add_taste_version(GUILD, base_version="b", n_votes=4, blob=b"z")
        await store.add_taste_version(OTHER, base_version="b", n_votes=1, path="/m/o/1.taste")
        await store.guild_left(GUILD)
        run = await store.create_run("finetune", kind="taste", guild_id=GUILD)
        other_run = await store.create_run("finetune", kind="taste", guild_id=OTHER)

        gone = await store.forget_guild(GUILD)
        assert (gone.tastes, gone.generations, gone.votes, gone.settings) == (2, 2, 3, 1)
        assert gone.taste_paths == ("/m/g/1.taste",)
        assert await store.generation(g1) is None
        assert await store.taste_versions(GUILD) == []
        assert await store.guild_left_at(GUILD) is None
        assert await store.guilds_left_before(datetime.now(UTC) + timedelta(days=1)) == []
        assert (await store.guild_settings(GUILD)).filter_level == "standard"
        failed = await store.run(run.id)
        assert (
            failed is not None
            and failed.status == "failed"
            and "forget-guild" in (failed.error or "")
        )
        # The other guild keeps everything.
        assert await store.tally(o) == (1, 0)
        assert (await store.guild_settings(OTHER)).filter_level == "off"
        assert len(await store.taste_versions(OTHER)) == 1
        assert (await store.run(other_run.id)).status == "queued"  # type: ignore[union-attr]
        async with store.db.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(VoteRow))).scalar_one()
        assert n == 1
        # Forgetting a guild with nothing stored is a no-op.
        assert (await store.forget_guild(GUILD)).total == 0

    with_store(db_url, body)
