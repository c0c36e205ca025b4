"""The communities bench's pure parts: the hidden tastes, the simulated votes, the bot's
request."""

from __future__ import annotations

import random
from collections import Counter

from bench.communities import (
    TASTES,
    VOTE_COUNTS,
    draw_votes,
    guild_id,
    likes_family,
    likes_food_school,
    likes_questions,
    likes_short,
    member_id,
    meme_body,
    round_seeds,
    upvote_share,
)
from bot.memes import MemeAsk

MAX_BIGINT = 2**63 - 1


def test_each_taste_likes_its_own_captions() -> None:
    assert likes_food_school(["when the pizza", "is late"])
    assert not likes_food_school(["when the pizzeria", "is late"])  # whole words only
    assert likes_food_school(["my HOMEWORK", ""])
    assert likes_questions(["why", "would you?"]) and not likes_questions(["why", "not"])
    assert likes_short(["a" * 20, "b" * 6]) and not likes_short(["a" * 20, "b" * 7])
    assert likes_family(["my mom", "says"]) and not likes_family(["my momentum"])


def test_tastes_are_distinct_and_one_is_the_control() -> None:
    assert len({t.name for t in TASTES}) == len(TASTES)
    assert [t.name for t in TASTES if not t.retrains] == ["control", "control-fresh"]
    assert sum(t.retrains for t in TASTES) >= 3
    control, fresh = TASTES[-2:]
    assert control.likes is fresh.likes and not control.fresh and fresh.fresh
    # A caption one taste likes is not liked by every other (the two controls share one).
    for t in TASTES[:-1]:
        liked = {
            "food-school": ["lunch at school", "is a long story about nothing much at all"],
            "questions": ["what if i told you", "that this caption is quite long indeed?"],
            "short": ["me", "you"],
            "control": ["brace yourselves", "my brother's long long caption is coming"],
        }[t.name]
        assert t.likes(liked)
        assert [o.name for o in TASTES[:-1] if o.likes(liked)] == [t.name]


def test_the_control_repeats_its_round_0_and_the_others_do_not() -> None:
    for index, taste in enumerate(TASTES):
        seeds = [round_seeds(7, index, taste, k) for k in range(4)]
        assert len(set(seeds)) == (1 if taste.name == "control" else 4)
    # Every server's draws differ from every other's in every round.
    firsts = {round_seeds(7, i, t, k)[1] for i, t in enumerate(TASTES) for k in range(4)}
    assert len(firsts) == 3 * 4 + 1 + 4


def test_votes_are_deterministic_per_seed() -> None:
    boxes = ["why?", "because"]
    a = [draw_votes(boxes, TASTES[1], random.Random(3)) for _ in range(5)]
    b = [draw_votes(boxes, TASTES[1], random.Random(3)) for _ in range(5)]
    assert a == b
    runs = [draw_votes(boxes, TASTES[1], random.Random(s)) for s in range(50)]
    assert len({tuple(r) for r in runs}) > 1


def test_vote_counts_and_noise() -> None:
    rng = random.Random(11)
    liked, disliked = ["why?", ""], ["no", ""]
    counts: Counter[int] = Counter()
    ups = downs = total = 0
    for _ in range(20_000):
        v = draw_votes(liked, TASTES[1], rng, noise=0.1)
        counts[len(v)] += 1
        ups += v.count(1)
        total += len(v)
        assert set(v) <= {1, -1}
        downs += draw_votes(disliked, TASTES[1], rng, noise=0.1).count(1)
    assert set(counts) == {0, 1, 2, 3}
    mean = sum(n * c for n, c in counts.items()) / 20_000
    assert abs(sum(n * p for n, p in enumerate(VOTE_COUNTS)) - 1.0) < 1e-9
    assert 0.95 < mean < 1.05
    assert 0.88 < ups / total < 0.92  # one vote in ten flipped
    assert 0.07 < downs / total < 0.13  # a disliked caption's 👍 are the flips
    assert draw_votes(liked, TASTES[1], random.Random(1), noise=0.0).count(-1) == 0


def test_upvote_share() -> None:
    assert upvote_share([]) is None
    assert upvote_share([1, -1, -1, 1]) == 0.5
    assert upvote_share([-1]) == 0.0


def test_request_is_the_bots_default_style_with_the_server() -> None:
    body = meme_body("success-kid", 5, guild_id(2))
    expected = MemeAsk(template="success-kid").engine_options(5).to_body()
    assert {k: v for k, v in body.items() if k in expected} == expected
    assert body["server"] == str(guild_id(2)) and body["server"].isdigit()
    assert body["template"] == "success-kid" and body["image"] is False


def test_ids_fit_the_store() -> None:
    ids = {member_id(guild_id(i), m) for i in range(len(TASTES)) for m in range(40)}
    assert len(ids) == len(TASTES) * 40
    assert max(ids) <= MAX_BIGINT and guild_id(len(TASTES)) <= MAX_BIGINT
