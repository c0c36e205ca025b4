"""What every `memebot` command's user error looks like: one `memebot: ...` line, no traceback."""

from __future__ import annotations

import subprocess


def assert_one_line_error(p: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert p.returncode != 0
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("memebot:")]
    assert len(err) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for n in needles:
        assert n in err[0], err[0]
