from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from harness.factories import make_imgflip_dir
from memebot.artifact.templates import GENERIC_SLOT
from memebot.errors import DataError, UsageError
from training.data import Caption
from training.prepare import fingerprint, prepare, split_of, write_prepared


def test_split_is_deterministic_and_order_free() -> None:
    caps = [Caption(f"t{i % 7}", (f"caption number {i}", "bottom")) for i in range(3000)]
    first = [split_of(c) for c in caps]
    shuffled = caps[:]
    random.Random(1).shuffle(shuffled)
    again = {c: split_of(c) for c in shuffled}
    assert first == [again[c] for c in caps]
    share = Counter(first)
    assert 0.87 < share["train"] / 3000 < 0.93
    assert 0.03 < share["val"] / 3000 < 0.07
    assert 0.03 < share["test"] / 3000 < 0.07


def test_prepare_splits_vocab_templates_and_cache(tmp_path: Path) -> None:
    root = make_imgflip_dir(tmp_path / "d", per_template=60)
    cache = tmp_path / "cache"
    a = prepare(root, cache_dir=cache)
    assert list((cache / "prepared").glob("*.json"))
    b = prepare(root, cache_dir=cache)  # from the cache
    assert a.splits == b.splits and a.fingerprint == b.fingerprint
    table = a.build_templates()
    db = table.lookup("distracted bf")
    assert db.slug == "distracted-boyfriend" and db.slot == GENERIC_SLOT and db.box_count == 3
    assert table.lookup("TWO BUTTONS").slot != GENERIC_SLOT
    assert table.lookup(87743020).slug == "two-buttons"
    assert "total" in a.statistics() and "vocabulary" in a.statistics()


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    root = make_imgflip_dir(tmp_path / "d", per_template=5)
    before = fingerprint(root)
    p = root / "memes" / "Y-U-No.json"
    memes = json.loads(p.read_text())
    memes[0]["boxes"] = ["y u no", "change the data"]
    p.write_text(json.dumps(memes))
    assert fingerprint(root) != before


def test_empty_after_cleaning(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "memes").mkdir(parents=True)
    (root / "memes" / "X.json").write_text(json.dumps([{"boxes": ["hi"]}, {"boxes": ["é" * 20]}]))
    with pytest.raises(DataError, match="no captions left after cleaning"):
        prepare(root)


def test_unknown_template_lookup_lists_closest(tmp_path: Path) -> None:
    table = prepare(make_imgflip_dir(tmp_path / "d", per_template=20)).build_templates()
    with pytest.raises(UsageError, match=r"closest: .*two-buttons"):
        table.lookup("two buttonz")


def test_write_prepared(tmp_path: Path) -> None:
    prep = prepare(make_imgflip_dir(tmp_path / "d", per_template=20))
    write_prepared(prep, tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "stats.json",
        "templates.json",
        "test.jsonl",
        "train.jsonl",
        "val.jsonl",
        "vocab.json",
    ]
    with pytest.raises(DataError, match="not empty"):
        write_prepared(prep, tmp_path / "out")
