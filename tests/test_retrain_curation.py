"""Curation rules, each on its own: rated generations -> train / held-out / negative rows."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.factories import scratch_env, scratch_settings
from memebot.store.types import GenerationInfo
from retrain.corpus import check_captions
from retrain.curation import CurationRules, curate, is_heldout, vote_rule, weight_of, write_jsonl
from retrain.subprocesses import Subprocess
from training.data import read_weighted

NO_HOLDOUT = CurationRules(heldout_share=0.0, negative_heldout_share=1.0)


def gen(i: int, up: int, down: int, boxes: tuple[str, ...] = (), template: str = "success-kid"):
    return GenerationInfo(
        id=i,
        guild_id=1,
        channel_id=2,
        message_id=100 + i,
        user_id=3,
        template=template,
        boxes=list(boxes or (f"caption number {i}", "bottom text")),
        options={},
        seed=None,
        model_version="v1",
        timings={},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        up=up,
        down=down,
    )


@pytest.mark.parametrize(
    ("up", "down", "rule"),
    [
        (0, 1, "negative"),
        (1, 3, "negative"),
        (1, 1, "low_score"),  # net 0
        (1, 0, "low_score"),  # net 1 < 2
        (2, 0, None),
        (7, 3, None),  # net 4, 70% up exactly
        (8, 4, "low_share"),  # net 4, 66.7% up
        (10, 0, None),
    ],
)
def test_vote_rules(up: int, down: int, rule: str | None) -> None:
    assert vote_rule(gen(1, up, down), CurationRules()) == rule


def test_a_deleted_meme_is_no_training_data() -> None:
    deleted = replace(gen(2, 9, 0), deleted_at=datetime(2026, 1, 2, tzinfo=UTC))
    down_deleted = replace(gen(3, 0, 9), deleted_at=datetime(2026, 1, 2, tzinfo=UTC))
    out = curate([gen(1, 9, 0), deleted, down_deleted], rules=NO_HOLDOUT)
    assert [r.generation_id for r in out.rows] == [1]
    assert out.rated == 1 and sum(out.dropped.values()) == 0


def test_rules_are_configurable() -> None:
    lax = CurationRules(min_score=1, min_up_share=0.5)
    assert vote_rule(gen(1, 1, 0), lax) is None
    assert vote_rule(gen(1, 3, 2), lax) is None
    assert vote_rule(gen(1, 3, 2), CurationRules()) == "low_score"


@pytest.mark.parametrize(("score", "cap", "weight"), [(2, 5, 2), (5, 5, 5), (40, 5, 5), (9, 3, 3)])
def test_weight_is_the_score_capped(score: int, cap: int, weight: int) -> None:
    assert weight_of(score, CurationRules(weight_cap=cap)) == weight


def test_kept_negative_and_dropped_counts() -> None:
    gens = [gen(1, 3, 0), gen(2, 0, 2), gen(3, 1, 0), gen(4, 8, 4), gen(5, 0, 0)]
    out = curate(gens, rules=NO_HOLDOUT)
    assert [r.generation_id for r in out.train] == [1]
    assert out.train[0].weight == 3
    assert [r.generation_id for r in out.negatives] == [2]
    assert out.negatives[0].kind == "negative" and out.negatives[0].split == "heldout"
    assert out.rated == 4  # the generation without votes is not rated
    assert out.dropped == {
        "negative": 1,
        "low_score": 1,
        "low_share": 1,
        "filtered": 0,
        "cleaning": 0,
        "in_base": 0,
    }


def test_content_filter_drops() -> None:
    gens = [gen(1, 3, 0, ("a nice caption", "x")), gen(2, 3, 0, ("a bad word here", "x"))]
    out = curate(gens, rules=NO_HOLDOUT, blocked=lambda text: "bad" in text)
    assert [r.generation_id for r in out.train] == [1]
    assert out.dropped["filtered"] == 1


def test_the_bots_content_filter_is_curations_default() -> None:
    from retrain.corpus import content_filter

    gens = [gen(1, 3, 0, ("when my dog eats pizza", "x")), gen(2, 5, 0, ("kill yourself", "now"))]
    out = curate(gens, rules=NO_HOLDOUT, blocked=content_filter("standard"))
    assert [r.generation_id for r in out.train] == [1]
    assert out.dropped["filtered"] == 1


def test_cleaning_rules_apply_and_normalise() -> None:
    def clean(items):  # stands in for the training rules: lowercases, drops short captions
        return [
            tuple(b.lower() for b in boxes) if sum(map(len, boxes)) >= 10 else None
            for _t, boxes in items
        ]

    gens = [gen(1, 3, 0, ("HELLO THERE FRIEND", "X")), gen(2, 3, 0, ("hi", "x"))]
    out = curate(gens, rules=NO_HOLDOUT, clean=clean)
    assert [r.boxes for r in out.train] == [("hello there friend", "x")]
    assert out.dropped["cleaning"] == 1


@pytest.mark.slow
def test_training_rules_through_the_check_captions_child(tiny_data: Path, tmp_path: Path) -> None:
    """The worker's path: `memebot data check-captions` in a child process cleans each rated
    caption (lowercased, spaces folded; non-ASCII dropped) and flags the corpus's own."""
    known = json.loads((tiny_data / "memes" / "Success-Kid.json").read_text())[0]["boxes"]
    gens = [
        gen(1, 3, 0, ("WHEN THE  WIFI", "is down again")),
        gen(2, 3, 0, ("café ☕ time", "yes")),
        gen(3, 3, 0, tuple(known)),
        gen(4, 0, 0, ("never rated", "so never checked")),
    ]
    s = scratch_settings(tmp_path, data_dir=tiny_data)
    proc = Subprocess(env=dict(os.environ) | scratch_env(tmp_path))
    checks = check_captions(gens, s, proc, tmp_path / "work")
    items = [(g.template, tuple(g.boxes)) for g in gens[:3]]
    assert checks.clean(items) == [
        ("when the wifi", "is down again"),
        None,
        tuple(b.lower() for b in known),
    ]
    assert checks.base == {("success-kid", "".join(b.lower() + "|" for b in known))}
    assert ("success-kid", ("never rated", "so never checked")) not in checks.cleaned
    out = curate(gens, rules=NO_HOLDOUT, clean=checks.clean, base=checks.base)
    assert [r.generation_id for r in out.train] == [1]
    assert out.dropped["cleaning"] == 1 and out.dropped["in_base"] == 1


def test_dedupe_against_the_base_corpus() -> None:
    gens = [gen(1, 3, 0, ("known caption", "x")), gen(2, 3, 0, ("new caption", "x"))]
    out = curate(gens, rules=NO_HOLDOUT, base={("success-kid", "known caption|x|")})
    assert [r.generation_id for r in out.train] == [2]
    assert out.dropped["in_base"] == 1


def test_same_caption_twice_counts_once_with_the_better_score() -> None:
    gens = [gen(1, 2, 0, ("same", "x")), gen(2, 5, 0, ("same", "x"))]
    out = curate(gens, rules=NO_HOLDOUT)
    assert [(r.generation_id, r.weight) for r in out.train] == [(2, 5)]


def test_heldout_split_is_stable_and_never_trained_on() -> None:
    gens = [gen(i, 3, 0) for i in range(200)]
    out = curate(gens, rules=CurationRules(heldout_share=0.2))
    assert 20 <= len(out.heldout) <= 60
    assert {r.text for r in out.heldout}.isdisjoint({r.text for r in out.train})
    assert all(r.weight == 1 for r in out.heldout)
    again = curate(gens, rules=CurationRules(heldout_share=0.2))
    assert [r.generation_id for r in again.heldout] == [r.generation_id for r in out.heldout]
    assert is_heldout("t", "abc|", 1.0) and not is_heldout("t", "abc|", 0.0)


def test_downvoted_split_between_the_gate_and_the_unlikelihood_term() -> None:
    gens = [gen(i, 1, 5) for i in range(200)]
    out = curate(gens, rules=CurationRules(negative_heldout_share=0.5))
    assert 60 <= len(out.negatives) <= 140
    assert len(out.negatives) + len(out.train_negatives) == 200 and not out.train
    assert {r.text for r in out.negatives}.isdisjoint({r.text for r in out.train_negatives})
    assert all(r.split == "heldout" and r.weight == 1 for r in out.negatives)
    # Training negatives weigh their net score (down - up), capped like upvoted rows.
    assert all(r.kind == "negative" and r.split == "train" for r in out.train_negatives)
    assert {r.weight for r in out.train_negatives} == {4}
    again = curate(gens, rules=CurationRules(negative_heldout_share=0.5))
    assert [r.generation_id for r in again.negatives] == [r.generation_id for r in out.negatives]
    assert out.counts()["train_negatives"] == len(out.train_negatives)
    everything = curate(gens, rules=CurationRules(negative_heldout_share=1.0))
    assert len(everything.negatives) == 200 and not everything.train_negatives


def test_jsonl_is_what_training_reads(tmp_path: Path) -> None:
    out = curate([gen(1, 4, 0), gen(2, 2, 0)], rules=NO_HOLDOUT)
    path = tmp_path / "curated.jsonl"
    assert write_jsonl(out.train, path) == 2
    first = json.loads(path.read_text().splitlines()[0])
    assert first["template"] == "success-kid" and first["weight"] == 4
    rows = read_weighted(path)
    assert [(c.template, c.boxes, w) for c, w in rows] == [
        ("success-kid", ("caption number 1", "bottom text"), 4.0),
        ("success-kid", ("caption number 2", "bottom text"), 2.0),
    ]
