"""The fine-tune a worker asks for (fast, no training): how often a curated caption is repeated
(the share and the views cap), and that training gets the train files only, never the gate's
held-out ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from memebot.settings import Settings
from memebot.store.types import GenerationInfo
from retrain.curation import CurationRules, curate
from retrain.worker import FINETUNE_BATCH, NEGATIVE_RATIO, extra_weight, train_candidate


def views(x: float, weights: list[int], base: int, samples: int) -> float:
    """Expected times the top-weight row is drawn: its copies x samples / rows."""
    return max(weights) * x * samples / (base + x * sum(weights))


def test_views_cap_keeps_few_captions_from_being_memorised() -> None:
    weights = [3] * 49  # round 1 of the old bench: 49 captions, each seen ~400 times
    base, samples = 250_000, 300 * 256
    uncapped = extra_weight(weights, base, 0.25)
    assert views(uncapped, weights, base, samples) > 300
    capped = extra_weight(weights, base, 0.25, views=8, samples=samples)
    assert views(capped, weights, base, samples) == pytest.approx(8)


def test_share_bounds_the_curated_rows_when_they_are_many() -> None:
    weights = [3] * 5000
    base, samples = 250_000, 40 * 256
    x = extra_weight(weights, base, 0.5, views=1000, samples=samples)
    assert x * sum(weights) / (base + x * sum(weights)) == pytest.approx(0.5)
    # Huge views: the cap cannot bind (every row seen at most samples x top / total times).
    assert extra_weight(weights, base, 0.5, views=1e9, samples=samples) == pytest.approx(x)


def test_every_row_keeps_a_copy() -> None:
    x = extra_weight([1, 2, 3], 100, 0.01, views=0.001, samples=10**6)
    assert round(1 * x) >= 1
    assert extra_weight([], 100, 0.5) == 1.0


def gen(i: int, up: int, down: int) -> GenerationInfo:
    return GenerationInfo(
        id=i,
        guild_id=1,
        channel_id=2,
        message_id=100 + i,
        user_id=3,
        template="success-kid",
        boxes=[f"caption number {i}", "bottom text"],
        options={},
        seed=None,
        model_version="v1",
        timings={},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        up=up,
        down=down,
    )


class Recorder:
    def __init__(self) -> None:
        self.args: list[str] = []

    def run(self, args: list[str], *, poll: Any = None) -> str:
        self.args = args
        out = Path(args[args.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "meta.json").write_text("{}")
        return ""


def candidate_args(tmp_path: Path, env: dict[str, str]) -> tuple[list[str], dict[str, Path]]:
    from retrain.curation import write_jsonl

    curated = curate(
        [gen(i, 3, 0) for i in range(40)] + [gen(100 + i, 0, 3) for i in range(60)],
        rules=CurationRules(),
    )
    assert curated.train and curated.heldout and curated.negatives and curated.train_negatives
    files = {k: tmp_path / f"{k}.jsonl" for k in ("train", "train_down", "up", "down")}
    write_jsonl(curated.train, files["train"])
    write_jsonl(curated.train_negatives, files["train_down"])
    write_jsonl(curated.heldout, files["up"])
    write_jsonl(curated.negatives, files["down"])
    active = tmp_path / "active"
    active.mkdir()
    meta = {"version": "v1", "arch": "char-gru", "metrics": {"train_captions": 250_000}}
    (active / "meta.json").write_text(json.dumps(meta))
    settings = Settings.from_env({"MEMEBOT_DATA_DIR": str(tmp_path / "data")} | env)
    ctx = SimpleNamespace(
        settings=settings, run=SimpleNamespace(id=7, mode="finetune"), update=lambda **_: None
    )
    proc = Recorder()
    train_candidate(ctx, proc, active, files, tmp_path / "cand", curated)  # type: ignore[arg-type]
    return proc.args, files


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_training_reads_train_files_only(tmp_path: Path) -> None:
    args, files = candidate_args(tmp_path, {"MEMEBOT_RETRAIN_UNLIKELIHOOD": "0.1"})
    assert flag(args, "--extra-data") == str(files["train"])
    assert flag(args, "--negative-data") == str(files["train_down"])
    assert str(files["up"]) not in args and str(files["down"]) not in args
    assert flag(args, "--unlikelihood-weight") == "0.1"
    assert flag(args, "--batch-size") == str(FINETUNE_BATCH)
    # Downvoted rows get NEGATIVE_RATIO copies per upvoted copy, in all.
    up = [json.loads(x)["weight"] for x in files["train"].read_text().splitlines()]
    down = [json.loads(x)["weight"] for x in files["train_down"].read_text().splitlines()]
    x_up, x_down = float(flag(args, "--extra-weight")), float(flag(args, "--negative-weight"))
    assert x_down * sum(down) == pytest.approx(NEGATIVE_RATIO * x_up * sum(up), rel=1e-3)


def test_no_unlikelihood_no_negative_rows(tmp_path: Path) -> None:
    args, _ = candidate_args(tmp_path, {"MEMEBOT_RETRAIN_UNLIKELIHOOD": "0"})
    assert "--negative-data" not in args and "--unlikelihood-weight" not in args
