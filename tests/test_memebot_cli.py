"""The console script as a user runs it: one-line errors, non-zero exit, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import assert_one_line_error
from harness.factories import make_imgflip_dir


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "memebot.cli", *args],
        capture_output=True,
        text=True,
        env=e,
        cwd=cwd,
        timeout=300,
    )


def test_help_lists_subcommands() -> None:
    p = run("--help")
    assert p.returncode == 0
    # Every module's commands are registered for --help (a known command loads only its own).
    for cmd in ("data", "train", "eval", "engine", "generate", "bot", "up", "db"):
        assert cmd in p.stdout
    t = run("train", "--help")
    assert "--max-minutes" in t.stdout and "--resume" in t.stdout and "--distribute" in t.stdout
    assert "--precision" in t.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["train", "--arch", "markov", "--out", "{tmp}/m", "--data", "{data}"],
            ["--arch markov", "unknown architecture"],
        ),
        (["train", "--data", "{tmp}/missing", "--out", "{tmp}/m"], ["missing: no such file"]),
        (
            ["train", "--data", "{data}", "--out", "{tmp}", "--set", "hidden=8"],
            ["output directory already exists"],
        ),
        (["train", "--data", "{data}", "--out", "{tmp}/m", "--set", "wings=2"], ["--set wings=2"]),
        (
            ["train", "--arch", "seed-cnn", "--precision", "mixed_bfloat16", "--out", "{tmp}/m"],
            ["--precision mixed_bfloat16", "seed-cnn trains in float32 only"],
        ),
        (["eval", "{tmp}/nomodel", "--data", "{data}"], ["nomodel: not a model artifact"]),
        (["generate", "success-kid", "--model", "{tmp}/nomodel"], ["nomodel"]),
        (["data", "prepare", "--data", "{data}", "--out", "{data}"], ["not empty"]),
        # generate: every mistake reported before the model loads (the model path is missing)
        (["generate", "two buttonz", "--model", "{tmp}/nomodel"], ["unknown template", "two-b"]),
        (["generate", "drake", "--model", "{tmp}/nomodel", "-n", "11"], ["-n: must be at most"]),
        (["generate", "drake", "--model", "{tmp}/nomodel", "--top-p", "0"], ["--top-p: "]),
        (
            ["generate", "drake", "--model", "{tmp}/nomodel", "--start", "y" * 81],
            ["--start: 81 characters"],
        ),
        (
            ["generate", "expanding brain", "--model", "{tmp}/nomodel", "--max-len", "5"],
            ["--max-len: must leave room for 4 boxes"],
        ),
        (["generate", "drake", "--model", "{tmp}/nomodel", "-o", "{tmp}"], ["is a directory"]),
        (
            ["generate", "drake", "--model", "{tmp}/nomodel", "-o", "{tmp}/afile/meme.jpg"],
            ["-o {tmp}/afile/meme.jpg", "cannot create"],
        ),
        (  # a GIF name would get JPEG bytes
            ["generate", "drake", "--model", "{tmp}/nomodel", "-o", "{tmp}/meme.gif"],
            ["-o {tmp}/meme.gif", "unknown image suffix '.gif'", ".jpg, .jpeg, .png, .webp"],
        ),
        (
            ["generate", "drake", "--model", "{tmp}/nomodel", "-o", "{tmp}/meme"],
            ["-o {tmp}/meme", "unknown image suffix '(none)'"],
        ),
        (
            [
                "generate",
                "drake",
                "--model",
                "{tmp}/nomodel",
                "-o",
                "{tmp}/m.png",
                "--format",
                "jpeg",
            ],
            ["-o {tmp}/m.png", "the suffix means png, --format says jpeg"],
        ),
        (  # the directory exists and passes access(2) as root; creating a file there fails
            ["generate", "drake", "--model", "{tmp}/nomodel", "-o", "/proc/memebot-meme.png"],
            ["-o /proc/memebot-meme.png", "cannot write a file in /proc"],
        ),
        (["engine", "--model", "{tmp}/nomodel", "--port", "99999"], ["--port 99999"]),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    data = make_imgflip_dir(tmp_path / "data", per_template=20)
    (tmp_path / "afile").write_text("a file, not a directory")
    fmt = [a.format(tmp=tmp_path, data=data) for a in args]
    p = run(*fmt, env={"MEMEBOT_CACHE_DIR": str(tmp_path / "cache")})
    assert_one_line_error(p, *(n.format(tmp=tmp_path) for n in needles))
    if args[0] in ("generate", "engine") and needles != ["nomodel"]:
        assert "not a model artifact" not in p.stderr  # reported before the model loads
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "m.partial").exists()


def test_corrupt_data_file_named(tmp_path: Path) -> None:
    data = make_imgflip_dir(tmp_path / "data", per_template=5)
    (data / "memes" / "Y-U-No.json").write_text("[{")
    p = run("data", "stats", "--data", str(data), env={"MEMEBOT_CACHE_DIR": str(tmp_path / "c")})
    assert_one_line_error(p, "Y-U-No.json", "not valid JSON")


def test_data_stats_prints_cleaning_table(tmp_path: Path) -> None:
    data = make_imgflip_dir(tmp_path / "data", per_template=30)
    p = run("data", "stats", "--data", str(data), env={"MEMEBOT_CACHE_DIR": str(tmp_path / "c")})
    assert p.returncode == 0, p.stderr
    assert "not_english" in p.stdout and "kept" in p.stdout and "train" in p.stdout


def test_output_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    env = {"MEMEBOT_OUTPUT_DIR": str(tmp_path / "afile")}
    p = run("generate", "drake", "--model", str(tmp_path / "nomodel"), env=env)
    assert_one_line_error(p, f"MEMEBOT_OUTPUT_DIR={tmp_path / 'afile'}", "not a directory")


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "soon"])
def test_bad_setting_is_one_line(value: str) -> None:
    p = run("generate", "drake", env={"MEMEBOT_REQUEST_TIMEOUT": value})
    assert_one_line_error(p, f"MEMEBOT_REQUEST_TIMEOUT='{value}'")


def test_engine_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        p = run("engine", "--model", str(tmp_path / "nomodel"), "--port", str(port))
    assert_one_line_error(p, f"--port {port}", "cannot listen")


@pytest.mark.slow
def test_eval_json(tiny_model: Path, tiny_data: Path, tmp_path: Path) -> None:
    import json

    p = run(
        "eval",
        str(tiny_model),
        "--data",
        str(tiny_data),
        "--split",
        "val",
        "--json",
        env={"MEMEBOT_CACHE_DIR": str(tmp_path / "c")},
    )
    assert p.returncode == 0, p.stderr
    obj = json.loads(p.stdout.strip().splitlines()[-1])
    assert {"nats_per_char", "accuracy", "captions", "chars"} <= set(obj)
    assert obj["captions"] > 0 and obj["chars"] > obj["captions"] * 10


@pytest.mark.slow
def test_generate_renders_and_prints_the_image_path(tiny_model: Path, tmp_path: Path) -> None:
    from PIL import Image

    env = {
        "MEMEBOT_OUTPUT_DIR": str(tmp_path / "out"),
        "MEMEBOT_IMAGES_DIR": str(tmp_path / "none"),
        "MEMEBOT_DOWNLOAD_IMAGES": "0",
    }
    p = run("generate", "distracted-boyfriend", "--model", str(tiny_model), "--seed", "5", env=env)
    assert p.returncode == 0, p.stderr
    caption, image_line = p.stdout.strip().splitlines()[-2:]
    assert caption.startswith("Distracted Boyfriend: ") and caption.count(" | ") == 2
    path = Path(image_line.removeprefix("image: "))
    assert path.parent == tmp_path / "out" and Image.open(path).format == "JPEG"
    assert list((tmp_path / "out").iterdir()) == [path]  # written beside, renamed: no leftovers
    again = run(
        "generate",
        "distracted-boyfriend",
        "--model",
        str(tiny_model),
        "--seed",
        "5",
        "--no-image",
        env=env,
    )
    assert again.stdout.strip() == caption  # same seed, same caption
    png = tmp_path / "named.png"  # the extension chooses the format
    p = run("generate", "drake", "--model", str(tiny_model), "-o", str(png), env=env)
    assert p.returncode == 0, p.stderr
    assert Image.open(png).format == "PNG" and not list(tmp_path.glob(".named.png*"))


BLOCK_TRAIN_EXTRA = """
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):  # the base install: no TensorFlow, Keras or lingua
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "lingua"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NotInstalled())
from memebot.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--out", "{tmp}/m"],
        ["eval", "models/default"],
        ["data", "prepare", "--out", "{tmp}/p"],
        ["crowd", "fit", "--out", "{tmp}/c.npz"],
    ],
)
def test_training_commands_without_the_train_extra(args: list[str], tmp_path: Path) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    p = subprocess.run(
        [sys.executable, "-c", BLOCK_TRAIN_EXTRA, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert_one_line_error(p, f"memebot {args[0]}", "pip install 'memebot[train]'")
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("command", ["bot", "up"])
def test_bot_without_token_is_one_line(command: str, tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": "", "MEMEBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"}
    p = run(command, env=env, cwd=tmp_path)
    assert_one_line_error(p, "DISCORD_TOKEN is not set", "docs/BOT.md")


def test_bot_shard_flags_are_checked(tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": "x", "MEMEBOT_SHARDS": "3"}
    assert_one_line_error(run("bot", env=env, cwd=tmp_path), "--shard 0..2")
    assert_one_line_error(run("bot", "--shard", "3", env=env, cwd=tmp_path), "--shard 3")
