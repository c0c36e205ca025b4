"""Bad input to `memebot train`, `eval` and `data prepare`: one line `memebot: error: ...`
naming the flag, a non-zero exit, no traceback, and no `OUT/` or `OUT.partial/` left behind.

Most cases run `memebot.cli.main` in this process (a subprocess pays ~5 s of TensorFlow
import each) and point --data at a missing directory: the flag's error, not "no such file",
shows the check ran before any data was read.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.factories import make_imgflip_dir
from memebot.artifact.configs import config_problems
from memebot.cli import build_parser, main
from memebot.errors import UsageError
from memebot.settings import Settings
from training.options import (
    TrainOptions,
    check_options,
    parse_field_value,
    parse_overrides,
)


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    """Runs the console script's main in-process; returns its single error line."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("memebot: error: "), err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not out.with_name(out.name + ".partial").exists()


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--batch-size", "-1"], ["--batch-size -1", ">= 1, or 0"]),
        (["--epochs", "0"], ["--epochs 0", "at least 1"]),
        (["--epochs", "-3"], ["--epochs -3"]),
        (["--lr", "-1"], ["--lr -1.0", "> 0"]),
        (["--lr", "nan"], ["--lr nan", "finite"]),
        (["--lr", "inf"], ["--lr inf", "finite"]),
        (["--limit", "-5"], ["--limit -5", ">= 0"]),
        (["--val-limit", "-1"], ["--val-limit -1", ">= 0"]),
        (["--max-minutes", "-1"], ["--max-minutes -1.0", "> 0"]),
        (["--max-minutes", "0"], ["--max-minutes 0.0", "> 0"]),
        (["--max-minutes", "nan"], ["--max-minutes nan"]),
        (["--patience", "-1"], ["--patience -1", ">= 0"]),
        (["--steps-per-epoch", "-1"], ["--steps-per-epoch -1", ">= 0"]),
        (["--seed", "-1"], ["--seed -1", "between 0 and"]),
        (["--lr-schedule", "cosine"], ["--lr-schedule cosine", "--max-minutes", "--steps-per"]),
        (["--seed", str(2**32)], [f"--seed {2**32}"]),
        (["--set", "hidden=-4"], ["--set hidden=-4", "hidden must be >= 1"]),
        (["--set", "layers=0"], ["--set layers=0", "layers must be >= 1"]),
        (["--set", "hidden=1.5"], ["--set hidden=1.5", "expected an integer"]),
        (["--set", "dropout=1"], ["--set dropout=1", "dropout must be < 1"]),
        (["--set", "dropout=nan"], ["--set dropout=nan", "finite"]),
        (["--set", "template_dropout=-0.1"], ["--set template_dropout=-0.1", ">= 0"]),
        (["--set", "hidden"], ["--set hidden", "KEY=VALUE"]),
        (["--init-from", "models/x", "--set", "hidden=64"], ["--set", "--init-from"]),
        (["--arch", "seed-cnn", "--set", "kernel=0"], ["--set kernel=0", "kernel must be >= 1"]),
        (["--arch", "seed-cnn", "--set", "dropout=1.5"], ["--set dropout=1.5", "< 1"]),
    ],
)
def test_train_flag_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], needles: list[str]
) -> None:
    out = tmp_path / "m"
    argv = ["train", "--data", str(tmp_path / "no-data"), "--out", str(out), *flags]
    one_line_error(capsys, argv, *needles)
    assert_nothing_written(out)


def test_train_errors_as_a_user_sees_them(tmp_path: Path) -> None:
    """The real console script, once: same line, exit code 2, no traceback, nothing written."""
    data = make_imgflip_dir(tmp_path / "data", per_template=20)
    out = tmp_path / "m"
    argv = ["train", "--data", str(data), "--out", str(out), "--set", "hidden=-4"]
    p = subprocess.run(
        [sys.executable, "-m", "memebot.cli", *argv, "--batch-size", "8"],
        capture_output=True,
        text=True,
        env={**os.environ, "MEMEBOT_CACHE_DIR": str(tmp_path / "cache")},
        timeout=300,
    )
    assert p.returncode == 2
    assert p.stderr.strip() == "memebot: error: --set hidden=-4: hidden must be >= 1"
    assert_nothing_written(out)


def test_cli_reports_a_bad_flag_before_importing_tensorflow(tmp_path: Path) -> None:
    """`memebot train`/`eval` with a bad flag answer without TensorFlow's seconds of import."""
    code = (
        "import sys\n"
        "from memebot.cli import main\n"
        f"d = {str(tmp_path)!r}\n"
        "assert main(['train', '--data', d, '--out', d + '/m', '--batch-size', '-1']) == 2\n"
        "assert main(['eval', 'models/default', '--limit', '-1']) == 2\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("memebot: error:") == 2


def test_option_checks_need_no_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from memebot.errors import UsageError\n"
        "from training.train import TrainOptions, train\n"
        "for bad in ({'batch_size': -1}, {'overrides': {'hidden': '-4'}}, {'epochs': 0}):\n"
        f"    opts = TrainOptions(data=Path({str(tmp_path)!r}), out=Path({str(tmp_path / 'm')!r}),"
        " **bad)\n"
        "    try:\n"
        "        train(opts)\n"
        "    except UsageError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('accepted ' + repr(bad))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize(
    "good",
    [
        {"batch_size": 0},
        {"batch_size": 1, "epochs": 1, "learning_rate": 0.0, "patience": 0},
        {"learning_rate": 1e6, "max_minutes": 0.01, "steps_per_epoch": 0},
        {"limit": 0, "val_limit": 0, "seed": 0},
        {"limit": 1, "val_limit": 1, "seed": 2**32 - 1, "max_minutes": None},
        {"lr_schedule": "cosine", "max_minutes": 5.0},
        {"lr_schedule": "cosine", "steps_per_epoch": 10},
    ],
)
def test_in_range_options_pass(tmp_path: Path, good: dict[str, Any]) -> None:
    check_options(TrainOptions(data=tmp_path, out=tmp_path / "m", **good))


@pytest.mark.parametrize(
    ("arch", "key", "value", "expected"),
    [
        ("char-gru", "hidden", "64", 64),
        ("char-gru", "hidden", " 64 ", 64),
        ("char-gru", "layers", "1", 1),
        ("char-gru", "dropout", "0", 0.0),
        ("char-gru", "dropout", "0.999", 0.999),
        ("char-gru", "template_dropout", "1e-1", 0.1),
        ("seed-cnn", "kernel", "3", 3),
        ("seed-cnn", "dropout", "0.5", 0.5),
        ("transformer", "d_model", "128", 128),
        ("transformer", "warmup_steps", "0", 0),
    ],
)
def test_set_good_values(arch: str, key: str, value: str, expected: object) -> None:
    config = parse_overrides(arch, {key: value})
    got = getattr(config, key)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("arch", "key", "value", "needle"),
    [
        ("char-gru", "hidden", "-4", "hidden must be >= 1"),
        ("char-gru", "hidden", "0", "hidden must be >= 1"),
        ("char-gru", "hidden", "1.5", "expected an integer"),
        ("char-gru", "hidden", "abc", "expected an integer"),
        ("char-gru", "hidden", "", "expected an integer"),
        ("char-gru", "layers", "0", "layers must be >= 1"),
        ("char-gru", "max_boxes", "-1", "max_boxes must be >= 1"),
        ("char-gru", "dropout", "1", "dropout must be < 1"),
        ("char-gru", "dropout", "-0.5", "dropout must be >= 0"),
        ("char-gru", "dropout", "nan", "expected a finite number"),
        ("char-gru", "dropout", "inf", "expected a finite number"),
        ("char-gru", "dropout", "-inf", "expected a finite number"),
        ("char-gru", "dropout", "half", "expected a number"),
        ("char-gru", "template_dropout", "1.0", "template_dropout must be < 1"),
        ("char-gru", "wings", "2", "has no config field 'wings'"),
        ("seed-cnn", "seq_len", "0", "seq_len must be >= 1"),
        ("seed-cnn", "filters", "-1", "filters must be >= 1"),
        ("transformer", "heads", "3", "heads must divide d_model 256"),
        ("transformer", "warmup_steps", "-1", "warmup_steps must be >= 0"),
    ],
)
def test_set_bad_values(arch: str, key: str, value: str, needle: str) -> None:
    with pytest.raises(UsageError, match=f"^--set {key}={value}: ") as e:
        parse_overrides(arch, {key: value})
    assert needle in str(e.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("True", True),
        ("yes", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        ("0", False),
        ("off", False),
    ],
)
def test_bool_fields_parse_words(text: str, expected: bool) -> None:
    assert parse_field_value(bool, text) is expected


@pytest.mark.parametrize("text", ["", "2", "maybe", "truee", "-1"])
def test_bool_fields_refuse_other_words(text: str) -> None:
    with pytest.raises(ValueError, match="true/false"):
        parse_field_value(bool, text)


@dataclass
class _FutureConfig:
    """An architecture config not written yet: rules from metadata, type and name."""

    width: int = 8
    bias: bool = True
    dropout: float = 0.1
    attn_dropout_rate: float = 0.1
    temperature: float = field(default=1.0, metadata={"min": 0.1, "max": 10.0})
    heads: int = field(default=2, metadata={"min": 1, "max": 4, "max_open": True})
    scale: float = 1.0


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        ({}, []),
        ({"bias": False, "dropout": 0.0, "scale": -3.0}, []),
        ({"width": 0}, [("width", "must be >= 1")]),
        ({"attn_dropout_rate": 1.0}, [("attn_dropout_rate", "must be < 1.0")]),
        ({"temperature": 10.5}, [("temperature", "must be <= 10.0")]),
        ({"temperature": 0.0}, [("temperature", "must be >= 0.1")]),
        ({"heads": 4}, [("heads", "must be < 4")]),
        ({"scale": math.inf, "width": -1}, [("width", "must be >= 1"), ("scale", "finite")]),
    ],
)
def test_config_problems_reads_metadata_type_and_name(
    changes: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    got = config_problems(dataclasses.replace(_FutureConfig(), **changes))
    assert [name for name, _ in got] == [name for name, _ in problems]
    for (_, message), (_, needle) in zip(got, problems, strict=True):
        assert needle in message


def test_train_help_states_each_range() -> None:
    parser = build_parser(Settings.from_env())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"]
    numeric = [a for a in train._actions if a.type in (int, float)]
    assert {a.dest for a in numeric} >= {"epochs", "batch_size", "lr", "max_minutes", "limit"}
    for a in numeric:
        assert any(r in (a.help or "") for r in (">= 0", ">= 1", "> 0", " to ")), a.dest
    sets = next(a for a in train._actions if a.dest == "overrides")
    assert ">= 1" in (sets.help or "") and "[0, 1)" in (sets.help or "")


def test_eval_limit_refused_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", str(tmp_path / "no-model"), "--data", str(tmp_path), "--limit", "-1"]
    one_line_error(capsys, argv, "--limit -1", ">= 1, or 0")


@pytest.mark.slow
@pytest.mark.parametrize("keep", [0, 1000, "half", "all but one"])
def test_eval_names_a_truncated_weights_file(
    tiny_model: Path,
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    keep: int | str,
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    weights = model / "model.keras"
    data = weights.read_bytes()
    n = {"half": len(data) // 2, "all but one": len(data) - 1}.get(str(keep), keep)
    assert isinstance(n, int)
    weights.write_bytes(data[:n])
    # The checksum redone, as by someone who edited the artifact: only the archive can tell.
    meta = json.loads((model / "meta.json").read_text())
    meta["files"]["model.keras"] = hashlib.sha256(data[:n]).hexdigest()
    (model / "meta.json").write_text(json.dumps(meta))
    line = one_line_error(capsys, ["eval", str(model), "--data", str(tiny_data)], str(weights))
    assert "corrupt" in line


@pytest.mark.slow
def test_diverging_run_stops_with_one_line_and_leaves_nothing(
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--lr 1e6 is in range, but the loss explodes on the second batch (it was an IndexError
    from sampling with overflowed weights, after an artifact-to-be in OUT.partial/)."""
    out = tmp_path / "m"
    argv = ["train", "--data", str(tiny_data), "--out", str(out), "--lr", "1e6", "--quiet"]
    argv += ["--batch-size", "32", "--precision", "float32", "--epochs", "2"]
    argv += ["--set", "hidden=48", "--set", "layers=1", "--set", "char_emb=16"]
    monkeypatch.setenv("MEMEBOT_CACHE_DIR", str(tmp_path / "cache"))
    rc = main(argv)
    err = capsys.readouterr().err.splitlines()
    assert rc != 0
    assert len(err) == 1 and err[0].startswith("memebot: error: training diverged"), err
    assert "--lr" in err[0] and "nothing was saved" in err[0]
    assert_nothing_written(out)


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["hidden=64"], "--set hidden=64: the run in"),
        (["layers=1", "dropout=0.2"], "--set dropout=0.2: the run in"),
        (["hidden=0"], "--set hidden=0: hidden must be >= 1"),
    ],
)
def test_resume_refuses_a_different_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sets: list[str], needle: str
) -> None:
    """--resume keeps the run's config; repeating it is fine (test_training_train resumes so)."""
    out = tmp_path / "m"
    work = tmp_path / "m.partial"
    work.mkdir()
    (work / "run.json").write_text(json.dumps({"config": {"hidden": 16, "layers": 1}}))
    argv = ["train", "--data", str(tmp_path / "no-data"), "--out", str(out), "--resume"]
    one_line_error(capsys, [*argv, *(a for s in sets for a in ("--set", s))], needle)
    assert sorted(p.name for p in work.iterdir()) == ["run.json"] and not out.exists()


def test_diverged_keeps_finished_epochs_for_resume(tmp_path: Path) -> None:
    from training.rundir import diverged

    fresh, resumed = tmp_path / "a.partial", tmp_path / "b.partial"
    fresh.mkdir()
    (fresh / "run.json").write_text("{}")
    resumed.mkdir()
    (resumed / "history.json").write_text("{}")
    err = diverged(fresh, 2.0, "training diverged: loss nan")
    assert "nothing was saved" in str(err) and "--lr" in str(err)
    assert not fresh.exists()
    err = diverged(resumed, 2.0, "training diverged: loss nan")
    assert f"{resumed} keeps the finished epochs" in str(err) and "--resume" in str(err)
    assert (resumed / "history.json").is_file()


@pytest.mark.parametrize("case", ["file", "under a file", "not empty"])
def test_prepare_out_refused_before_reading_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out, needle = {
        "file": (blocker, "is a file, not a directory"),
        "under a file": (blocker / "sub" / "out", f"cannot create it, {blocker} is a file"),
        "not empty": (tmp_path, "exists and is not empty"),
    }[case]
    argv = ["data", "prepare", "--data", str(tmp_path / "no-data"), "--out", str(out)]
    one_line_error(capsys, argv, str(out), needle)
    assert blocker.read_text() == "x"
