"""training.caption_check and `memebot data check-captions`: the training data's cleaning and
the corpus lookup applied to captions from elsewhere (what retrain's curation asks of it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import assert_one_line_error
from harness.factories import scratch_env
from memebot.errors import DataError
from training.caption_check import check_captions, read_items


def known_caption(data: Path) -> tuple[str, ...]:
    return tuple(json.loads((data / "memes" / "Two-Buttons.json").read_text())[3]["boxes"])


def test_cleaned_alone_and_looked_up_in_the_corpus(tiny_data: Path, tmp_path: Path) -> None:
    known = known_caption(tiny_data)
    got = check_captions(
        [
            ("two-buttons", ("WHEN THE  WIFI", "is down again")),
            ("two-buttons", ("café ☕ time", "yes")),
            ("two-buttons", known),
            ("success-kid", known),  # the same text under another template is new
        ],
        tiny_data,
        tmp_path / "cache",
    )
    lowered = tuple(b.lower() for b in known)
    assert [(c.boxes, c.in_base) for c in got] == [
        (("when the wifi", "is down again"), False),
        (None, False),
        (lowered, True),
        (lowered, False),
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "expected {template, boxes}"),
        ('{"template": "t"}', "expected {template, boxes}"),
        ('{"template": "t", "boxes": "a|b"}', "boxes a list of strings"),
        ('{"template": 3, "boxes": ["a"]}', "template must be a string"),
    ],
)
def test_bad_input_names_the_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"template": "t", "boxes": ["a", "b"]}\n\n' + line + "\n")
    with pytest.raises(DataError, match=rf"in\.jsonl:3: .*{problem}"):
        read_items(path)


def test_the_command_writes_one_row_per_input_line(tiny_data: Path, tmp_path: Path) -> None:
    asked, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    asked.write_text(
        json.dumps({"template": "two-buttons", "boxes": list(known_caption(tiny_data))}) + "\n"
    )
    env = dict(os.environ) | scratch_env(tmp_path)
    cmd = [sys.executable, "-m", "memebot.cli", "data", "check-captions", str(asked)]
    p = subprocess.run(
        [*cmd, "--out", str(out), "--data", str(tiny_data)], env=env, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    assert "checked 1 captions: 1 kept by cleaning, 1 in the corpus" in p.stdout
    assert [json.loads(r)["in_base"] for r in out.read_text().splitlines()] == [True]
    asked.write_text("[1, 2]\n")
    p = subprocess.run(
        [*cmd, "--out", str(out), "--data", str(tiny_data)], env=env, capture_output=True, text=True
    )
    assert_one_line_error(p, "in.jsonl:1")
