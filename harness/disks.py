"""A real full disk: a small tmpfs, so writes past it fail with ENOSPC as on a full disk."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from harness.skips import skip_or_fail


@contextlib.contextmanager
def small_disk(where: Path, size_bytes: int) -> Iterator[Path]:
    """A real filesystem of `size_bytes` (tmpfs) mounted at `where`: writes past it fail with
    ENOSPC, as on a full disk. Needs root (CI runs as root); skips, or fails in CI, otherwise."""
    where.mkdir(parents=True, exist_ok=True)
    size_kb = max(size_bytes // 1024, 64)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        skip_or_fail(f"cannot mount a {size_kb} KB tmpfs to fill (needs root): {mount.stderr}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
