"""Logging: every module logs through `get_logger(__name__)`, so each logger sits under the one
`memebot` root and is named by its module (memebot.bot.votes, memebot.engine.scheduler, ...).
The console script configures it once (`configure`), from MEMEBOT_LOG_LEVEL and
MEMEBOT_LOG_FORMAT: text lines for a terminal, or one JSON object per line for a collector."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Literal, get_args

ROOT = "memebot"
LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = get_args(LogFormat)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_MARK = "_memebot_handler"  # set on the handler `configure` installs


def get_logger(name: str) -> logging.Logger:
    """The logger of module `name` under the `memebot` root."""
    if name == ROOT or name.startswith(ROOT + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT}.{name}")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the
    traceback as one string when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at each record (as logging's last resort does), so a
    caller that swaps stderr (a test capturing it) never leaves the handler on a closed one."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure(
    level: LogLevel = "info", fmt: LogFormat = "text", stream: IO[str] | None = None
) -> None:
    """One handler on the root logger, so libraries' records (discord.py's, aiohttp's,
    Alembic's) go the same way; memebot's loggers at `level`, libraries' at warning unless
    `level` is debug (their info lines would interleave with a command's own output). Calling it
    again replaces the handler it installed, not others'."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(h)
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    logging.getLogger(ROOT).setLevel(level.upper())
