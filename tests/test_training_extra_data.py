"""`memebot train --extra-data FILE --extra-weight X`: curated rows join the training split,
repeated by weight; bad values are one-line errors before any data is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.factories import train_tiny
from memebot.cli import main


def write_rows(path: Path) -> Path:
    rows = [
        {"template": "two-buttons", "boxes": ["when my dog eats pizza", "again"], "weight": 3},
        {"template": "success-kid", "boxes": ["PIZZA  for   breakfast"], "weight": 1},
        {"template": "success-kid", "boxes": ["café"], "weight": 5},  # dropped by cleaning
        {"template": "success-kid", "boxes": ["held out caption"], "split": "heldout"},
        {"template": "success-kid", "boxes": ["a bad caption"], "kind": "negative"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--extra-weight", "0"], "--extra-weight 0.0: must be a finite number > 0"),
        (["--extra-weight", "nan"], "--extra-weight nan"),
        (["--extra-data", "/nonexistent/rows.jsonl"], "--extra-data /nonexistent/rows.jsonl"),
    ],
)
def test_bad_extra_flags(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), *flags])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("memebot: error: ") and message in err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_extra_rows_are_cleaned_and_repeated_by_weight(tiny_data: Path, tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "rows.jsonl")
    out = train_tiny(tiny_data, tmp_path / "m", epochs=1, extra_data=rows, extra_weight=2.0)
    meta = json.loads((out / "meta.json").read_text())
    assert (
        meta["metrics"]["extra_captions"] == 3 * 2 + 1 * 2
    )  # non-ASCII, held-out, negative: not added
    plain = json.loads((train_tiny(tiny_data, tmp_path / "p", epochs=1) / "meta.json").read_text())
    assert meta["data_fingerprint"] != plain["data_fingerprint"]  # a new version for new rows
