"""Taste curation's rules (retrain/taste_curation.py): what each rated meme of a server becomes,
the minimums and their messages, the salted held-out split, and the whole path from the store
(one server's votes only, /forget-me honoured)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from harness.databases import with_store
from memebot.store import NewGeneration, RatedMeme, Store
from memebot.store.types import GenerationInfo
from retrain.taste_curation import (
    NotEnoughVotes,
    TasteRules,
    curate_guild,
    curate_taste,
    heldout_rank,
    is_heldout,
    taste_rows,
)

GUILD = 900001
OTHER = 900009
REQUESTER = 1


def rated(
    gid: int,
    votes: dict[int, int],
    *,
    boxes: tuple[str, ...] | None = None,  # None: a caption of its own
    guild: int = GUILD,
    requester: int = REQUESTER,
    template: str = "drake",
) -> RatedMeme:
    g = GenerationInfo(
        id=gid,
        guild_id=guild,
        channel_id=5,
        message_id=gid + 10_000,
        user_id=requester,
        template=template,
        boxes=list(boxes or (f"caption {gid}", "bottom")),
        options={},
        seed=None,
        model_version="v1",
        timings={},
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        up=sum(1 for v in votes.values() if v > 0),
        down=sum(1 for v in votes.values() if v < 0),
    )
    return RatedMeme(g, votes)


def blocked(text: str) -> bool:
    return "darn" in text


# (case, votes by user, caption) -> the rule that drops it, or (label, weight, up, down).
CASES = [
    ("a single upvote", {2: 1}, "top", (1, 1, 1, 0)),
    ("a single downvote", {2: -1}, "top", (-1, 1, 0, 1)),
    ("one-sided, three up", {2: 1, 3: 1, 4: 1}, "top", (1, 3, 3, 0)),
    ("weight capped", {u: 1 for u in range(2, 8)}, "top", (1, 3, 6, 0)),
    ("net +1 of three", {2: 1, 3: 1, 4: -1}, "top", (1, 1, 2, 1)),
    ("one-sided down", {2: -1, 3: -1}, "top", (-1, 2, 0, 2)),
    ("a tie", {2: 1, 3: -1}, "top", "tie"),
    ("only the requester's own vote", {REQUESTER: 1}, "top", "own_vote_only"),
    ("the requester's own down only", {REQUESTER: -1}, "top", "own_vote_only"),
    ("own up left out, one down", {REQUESTER: 1, 2: -1}, "top", (-1, 1, 0, 1)),
    ("own down left out, one up", {REQUESTER: -1, 2: 1}, "top", (1, 1, 1, 0)),
    ("own up would break a tie", {REQUESTER: 1, 2: 1, 3: -1}, "top", "tie"),
    ("the content filter flags it", {2: 1}, "oh darn", "filtered"),
    ("own vote first, filter after", {REQUESTER: 1}, "oh darn", "own_vote_only"),
    ("filtered downvoted too", {2: -1}, "oh darn", "filtered"),
]


@pytest.mark.parametrize(("case", "votes", "top", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_rule(
    case: str, votes: dict[int, int], top: str, expected: str | tuple[int, int, int, int]
) -> None:
    out = taste_rows(GUILD, [rated(7, votes, boxes=(top, "bottom"))], blocked=blocked)
    assert out.rated == 1
    if isinstance(expected, str):
        assert out.rows == []
        assert out.dropped == {k: int(k == expected) for k in out.dropped}
    else:
        (row,) = out.rows
        assert (row.label, row.weight, row.up, row.down) == expected
        assert row.generation_id == 7 and row.boxes == (top, "bottom")
        assert sum(out.dropped.values()) == 0
        assert out.n_votes == expected[2] + expected[3]


def test_unvoted_memes_are_not_rated_and_duplicates_count_once() -> None:
    memes = [
        rated(1, {}),
        rated(2, {2: 1}, boxes=("same", "caption")),
        rated(3, {2: 1, 3: 1, 4: 1}, boxes=("same", "caption")),  # the stronger one stays
        rated(4, {2: -1}, boxes=("same", "caption")),
        rated(5, {2: 1}, boxes=("same", "caption"), template="other"),  # another template
    ]
    out = taste_rows(GUILD, memes)
    assert out.rated == 4
    assert [(r.generation_id, r.label, r.weight) for r in out.rows] == [(3, 1, 3), (5, 1, 1)]
    assert out.dropped["duplicate"] == 2


def test_another_servers_meme_is_refused() -> None:
    with pytest.raises(ValueError, match="guild 900009's"):
        taste_rows(GUILD, [rated(1, {2: 1}, guild=OTHER)])


def test_heldout_is_stable_salted_per_server_and_a_quarter() -> None:
    ids = range(1, 4001)
    mine = [i for i in ids if is_heldout(GUILD, i, 0.25)]
    assert mine == [i for i in ids if is_heldout(GUILD, i, 0.25)]
    assert 0.22 < len(mine) / len(ids) < 0.28
    theirs = {i for i in ids if is_heldout(OTHER, i, 0.25)}
    overlap = len(theirs & set(mine)) / len(mine)
    assert 0.18 < overlap < 0.32  # independent: about a quarter of mine, not all of them
    memes = [rated(i, {2: 1 if i % 2 else -1}) for i in range(1, 41)]
    out = curate_taste(GUILD, memes)
    assert {r.generation_id for r in out.heldout} == {
        i for i in range(1, 41) if is_heldout(GUILD, i, 0.25)
    }
    assert all(r.split == "heldout" for r in out.heldout)
    assert all(r.split == "train" for r in out.train)


def server(liked: int, disliked: int, *, own_only: int = 0, start: int = 1) -> list[RatedMeme]:
    memes = [rated(start + i, {2: 1, 3: 1}) for i in range(liked)]
    memes += [rated(start + liked + i, {2: -1}) for i in range(disliked)]
    memes += [rated(start + 1000 + i, {REQUESTER: 1}) for i in range(own_only)]
    return memes


# (liked, disliked, the requester's self-votes only) -> (more rated, more liked, more disliked)
MINIMUMS = [
    (0, 0, 0, (20, 3, 3)),
    (10, 9, 0, (1, 0, 0)),
    (10, 9, 30, (1, 0, 0)),  # self-votes never make up the number
    (18, 2, 0, (0, 0, 1)),
    (2, 18, 0, (0, 1, 0)),
    (1, 1, 0, (18, 2, 2)),
    (17, 3, 0, None),
    (3, 17, 0, None),
    (30, 30, 0, None),
]


@pytest.mark.parametrize(("liked", "disliked", "own", "needed"), MINIMUMS)
def test_minimums_say_how_many_more(
    liked: int, disliked: int, own: int, needed: tuple[int, int, int] | None
) -> None:
    memes = server(liked, disliked, own_only=own)
    if needed is None:
        out = curate_taste(GUILD, memes)
        assert (out.liked, out.disliked) == (liked, disliked)
        assert len(out.train) + len(out.heldout) == liked + disliked
        return
    with pytest.raises(NotEnoughVotes) as e:
        curate_taste(GUILD, memes)
    assert (e.value.more_rated, e.value.more_liked, e.value.more_disliked) == needed
    assert str(e.value).count("\n") == 0
    assert f"({liked} liked, {disliked} disliked)" in str(e.value)


def test_the_message_reads_well() -> None:
    with pytest.raises(NotEnoughVotes) as e:
        curate_taste(GUILD, server(2, 10))
    assert str(e.value) == (
        "12 rated memes count for this server's taste (2 liked, 10 disliked); a taste needs"
        " at least 20, with 3 liked and 3 disliked: 8 more rated memes, 1 more liked needed"
    )
    with pytest.raises(NotEnoughVotes, match=r"^1 rated meme counts for"):
        curate_taste(GUILD, server(1, 0))


def test_a_label_wholly_on_one_side_lends_a_meme_to_the_other() -> None:
    # Every disliked meme hashed into training: the one ranked lowest is held out instead, so
    # the gate can rank both labels; every other meme stays where its hash put it.
    train_ids = [i for i in range(1, 200) if not is_heldout(GUILD, i, 0.25)]
    three = train_ids[:3]
    liked = [rated(i, {2: 1}) for i in range(1, 200) if i not in three][:20]
    disliked = [rated(i, {2: -1}) for i in three]
    out = curate_taste(GUILD, liked + disliked)
    lent = min(three, key=lambda i: heldout_rank(GUILD, i))
    assert [r.generation_id for r in out.heldout if r.label < 0] == [lent]
    assert {r.generation_id for r in out.heldout if r.label > 0} == {
        r.generation.id for r in liked if is_heldout(GUILD, r.generation.id, 0.25)
    }
    # Nothing held out by the hash at all: one of each label is.
    none = curate_taste(GUILD, liked + disliked, rules=TasteRules(heldout_share=0.0))
    assert sorted(r.label for r in none.heldout) == [-1, 1]
    # Everything held out by the hash: one of each label trains.
    every = curate_taste(GUILD, liked + disliked, rules=TasteRules(heldout_share=1.0))
    assert sorted(r.label for r in every.train) == [-1, 1]


def test_a_label_of_one_meme_cannot_be_on_both_sides() -> None:
    rules = TasteRules(min_rated=2, min_liked=1, min_disliked=1)
    with pytest.raises(NotEnoughVotes, match=r"part has no liked meme yet: rate a few more"):
        curate_taste(GUILD, server(1, 9), rules=rules)


def test_from_the_store_one_servers_votes_without_forgotten_users(db_url: str) -> None:
    async def body(store: Store) -> None:
        for i in range(24):
            await store.record_generation(
                NewGeneration(
                    guild_id=GUILD,
                    channel_id=5,
                    user_id=REQUESTER,
                    template="drake",
                    boxes=[f"caption {i}", "x"],
                    message_id=100 + i,
                )
            )
            await store.record_generation(
                NewGeneration(
                    guild_id=OTHER,
                    channel_id=6,
                    user_id=9,
                    template="drake",
                    boxes=[f"caption {i}", "x"],
                    message_id=500 + i,
                )
            )
            await store.set_vote(100 + i, REQUESTER, 1)  # the requester's own: not counted
            await store.set_vote(100 + i, 2, 1 if i % 2 else -1)
            await store.set_vote(500 + i, 2, -1)  # the other server's taste is its own
        await store.set_vote(100, 3, 1)  # meme 0: 2 down, 3 up -> a tie
        await store.set_vote(102, 4, 1)  # meme 2: 2 down, 4 up -> a tie, until 4 forgets
        before = curate_taste(GUILD, await store.guild_rated_memes(GUILD))
        assert before.dropped["tie"] == 2 and len(before.rows) == 22
        await store.forget_user(4)
        after = curate_taste(GUILD, await store.guild_rated_memes(GUILD))
        assert after.dropped["tie"] == 1 and len(after.rows) == 23
        assert (after.liked, after.disliked) == (12, 11)
        assert all(r.up + r.down == 1 for r in after.rows)
        assert after.n_votes == 23
        # A meme deleted on Discord leaves the taste's training data.
        assert await store.mark_deleted([101]) == 1
        rated_now = await store.guild_rated_memes(GUILD)
        assert 101 not in {m.generation.message_id for m in rated_now}
        assert len(curate_taste(GUILD, rated_now).rows) == 22

    with_store(db_url, body)


def test_curate_guild_reads_the_store_with_the_standard_filter(db_url: str) -> None:
    async def body(store: Store) -> None:
        for i in range(21):
            await store.record_generation(
                NewGeneration(
                    guild_id=GUILD,
                    channel_id=5,
                    user_id=REQUESTER,
                    template="drake",
                    boxes=["send nudes" if i == 0 else f"caption {i}", "x"],
                    message_id=100 + i,
                )
            )
            await store.set_vote(100 + i, 2, 1 if i % 2 else -1)
        out = await curate_guild(store, GUILD)
        assert out.dropped["filtered"] == 1 and len(out.rows) == 20
        with pytest.raises(NotEnoughVotes, match="20 rated memes count"):
            await curate_guild(store, GUILD, rules=TasteRules(min_rated=21))
        with pytest.raises(NotEnoughVotes, match="0 rated memes count"):
            await curate_guild(store, OTHER)

    with_store(db_url, body)


def test_a_deleted_meme_is_no_taste_data() -> None:
    gone = rated(2, {2: 1, 3: 1})
    gone = RatedMeme(
        replace(gone.generation, deleted_at=datetime(2026, 12, 2, tzinfo=UTC)), gone.votes
    )
    out = taste_rows(GUILD, [rated(1, {2: 1}), gone])
    assert out.rated == 1 and [r.generation_id for r in out.rows] == [1]
