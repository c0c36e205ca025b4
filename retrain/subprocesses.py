"""`memebot` subcommands run as child processes: how the retrain worker trains, evaluates and
checks captions without importing training code or TensorFlow. A crash, a kill or a full disk
in a child is its non-zero exit, turned into one `RunFailed` line with its last error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from memebot.errors import MemebotError

POLL_S = 1.0  # how often `poll` runs while a child works (the worker reads its progress)


class RunFailed(MemebotError):
    """A step of the run failed; the message is what the run's record shows."""


def memebot_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "memebot.cli", *args]


@dataclass
class Subprocess:
    """Runs `memebot` subcommands; `on_start` sees each process (tests kill it)."""

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    on_start: Callable[[subprocess.Popen[str]], None] | None = None

    def run(self, args: list[str], *, poll: Callable[[], None] | None = None) -> str:
        """stdout of `memebot ARGS`; RunFailed with the last stderr line on a non-zero exit."""
        proc = subprocess.Popen(
            memebot_command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        if self.on_start is not None:
            self.on_start(proc)
        if poll is None:
            out, err = proc.communicate()
        else:
            while proc.poll() is None:
                poll()
                time.sleep(POLL_S)
            out, err = proc.communicate()
        if proc.returncode != 0:
            lines = [ln for ln in (err or "").strip().splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit status {proc.returncode}"
            how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else "failed"
            raise RunFailed(f"memebot {args[0]} {how}: {last}")
        return out
