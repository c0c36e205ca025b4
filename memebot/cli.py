"""The `memebot` console script: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from memebot import __version__
from memebot.errors import MemebotError, UsageError
from memebot.logs import configure as configure_logging
from memebot.settings import Settings

# Commands that need the `train` extra (TensorFlow, Keras, the language detector); serving
# (`generate`, `engine`) needs none of it.
TRAIN_EXTRA_COMMANDS = ("train", "eval", "data", "worker", "crowd")
# `data` subcommands that only use the store: they run on the base install.
STORE_ONLY_DATA_COMMANDS = ("forget-guild",)
_TRAIN_EXTRA_MODULES = ("tensorflow", "keras", "lingua")


# A full disk (or quota) is the user's to fix: one line, like any other user error.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked installation counts as absent
        return False


def require_train_extra(command: str) -> None:
    missing = [m for m in _TRAIN_EXTRA_MODULES if not _installed(m)]
    if missing:
        raise UsageError(
            f"`memebot {command}` needs the training extra ({', '.join(missing)} not installed): "
            "pip install 'memebot[train]'"
        )


# The modules that register each command, in `--help` order. Only the command's own modules are
# imported when the command is known (the bot's and training's CLI modules stay unloaded for
# `memebot generate`); `--help`, no command or a typo registers them all. A module's
# `register(sub, settings)` adds its top-level commands; `data` is a group whose subcommands
# come from each of its modules' `register_data(dsub, settings)` (training's data preparation,
# retraining's export of rated captions), so no package imports another's CLI.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "data": ("training.cli", "retrain.cli"),
    "train": ("training.cli",),
    "eval": ("training.cli",),
    "crowd": ("training.crowd_cli",),
    "engine": ("engine.cli",),
    "generate": ("engine.cli",),
    "bot": ("bot.cli",),
    "up": ("bot.cli",),
    "db": ("memebot.store.cli",),
    "retrain": ("retrain.cli",),
    "worker": ("retrain.cli",),
    "model": ("retrain.cli",),
}
DATA_HELP = "prepare, inspect, download or export caption data"


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is not an option), if any."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMAND_MODULES else None
    return None


def build_parser(settings: Settings, command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or with only `command`'s modules when one is given."""
    wanted = COMMAND_MODULES.get(command or "") or tuple(
        m for mods in COMMAND_MODULES.values() for m in mods
    )
    parser = argparse.ArgumentParser(
        prog="memebot",
        description="Meme captions from a character-level neural network.",
        epilog="Settings come from MEMEBOT_* environment variables; see docs/SETTINGS.md.",
    )
    parser.add_argument("--version", action="version", version=f"memebot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [importlib.import_module(m) for m in dict.fromkeys(wanted)]  # each once, in order
    if command in (None, "data"):
        data = sub.add_parser("data", help=DATA_HELP, description=DATA_HELP)
        dsub = data.add_subparsers(dest="data_command", required=True)
        for module in modules:
            if hasattr(module, "register_data"):
                module.register_data(dsub, settings)
    if command != "data":
        for module in modules:
            module.register(sub, settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        settings = Settings.from_env()
    except MemebotError as e:
        print(f"memebot: error: {e}", file=sys.stderr)
        return e.exit_code
    configure_logging(settings.log_level, settings.log_format)
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(settings, _command_of(argv))
    args = parser.parse_args(argv)
    try:
        if args.command in TRAIN_EXTRA_COMMANDS and (
            getattr(args, "data_command", None) not in STORE_ONLY_DATA_COMMANDS
        ):
            require_train_extra(args.command)
        return int(args.func(args, settings))
    except MemebotError as e:
        print(f"memebot: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.errno not in DISK_FULL:
            raise  # anything else is a bug or an unexpected fault: keep the traceback
        where = f" writing {e.filename}" if e.filename else ""
        print(f"memebot: error: {e.strerror}{where} (free some space and retry)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("memebot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
