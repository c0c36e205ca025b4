from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.factories import make_imgflip_dir
from memebot.errors import DataError
from training.data import Caption, read_dataset, read_flat_rows, slugify


def test_imgflip_layout(tmp_path: Path) -> None:
    root = make_imgflip_dir(tmp_path / "d", per_template=5)
    caps, meta = read_dataset(root)
    assert len(caps) == 15
    assert {c.template for c in caps} == {"success-kid", "two-buttons", "y-u-no"}
    assert meta["distracted-boyfriend"].imgflip_id == 112126428
    assert meta["distracted-boyfriend"].name == "Distracted Boyfriend"
    assert meta["two-buttons"].aliases == ("alias one", "alias two")


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_flat_rows(tmp_path: Path, fmt: str) -> None:
    rows = [[61533, "make|all the memes|"], ["61544", "i did it|"]]
    p = tmp_path / f"rows.{fmt}"
    p.write_text(json.dumps(rows) if fmt == "json" else "\n".join(json.dumps(r) for r in rows))
    caps, meta = read_flat_rows(p)
    assert caps == [
        Caption("imgflip-61533", ("make", "all the memes")),
        Caption("imgflip-61544", ("i did it",)),
    ]
    assert caps[0].text == "make|all the memes|"
    assert meta["imgflip-61533"].imgflip_id == 61533


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: (p / "memes").mkdir(parents=True), "no memes/\\*.json"),
        (
            lambda p: (
                (p / "memes").mkdir(parents=True),
                (p / "memes" / "X.json").write_text("{oops"),
            ),
            "X.json: not valid JSON",
        ),
        (
            lambda p: (
                (p / "memes").mkdir(parents=True),
                (p / "memes" / "X.json").write_text('[{"boxes": 3}]'),
            ),
            "X.json: meme #0",
        ),
    ],
)
def test_bad_inputs_name_the_file(tmp_path: Path, setup, message: str) -> None:
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(DataError, match=message):
        read_dataset(root)


def test_bad_flat_row(tmp_path: Path) -> None:
    p = tmp_path / "rows.json"
    p.write_text(json.dumps([["abc", "x|"]]))
    with pytest.raises(DataError, match=r"rows\.json: row 1 template_id"):
        read_flat_rows(p)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Distracted-Boyfriend", "distracted-boyfriend"),
        ("Y U No", "y-u-no"),
        ("Aaaaand-Its-Gone!", "aaaaand-its-gone"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug
