"""A run's working directory, OUT.partial/: checked before a run starts or resumes, and kept for
--resume, or removed, when a run stops on an error (the errors say which)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

from memebot.errors import ArtifactError, UsageError
from training.models import CONFIGS
from training.options import TrainOptions


def check_paths(opts: TrainOptions) -> Path:
    if opts.arch not in CONFIGS:
        raise UsageError(
            f"--arch {opts.arch}: unknown architecture (choose from {', '.join(CONFIGS)})"
        )
    if opts.out.exists():
        raise UsageError(f"{opts.out}: output directory already exists (--out)")
    if opts.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UsageError(
            "--tensorboard: install the extra first: pip install 'memebot[tensorboard]'"
        )
    if opts.distribute not in ("none", "mirrored", "multiworker"):
        raise UsageError(f"--distribute {opts.distribute}: choose none, mirrored or multiworker")
    work = opts.out.with_name(opts.out.name + ".partial")
    if work.exists() and not opts.resume:
        raise UsageError(
            f"{work}: an unfinished run is there; pass --resume to continue it or delete it"
        )
    if opts.resume and not (work / "run.json").is_file():
        raise UsageError(f"{work}: nothing to resume (no run.json)")
    return work


def kept_for_resume(work: Path) -> bool:
    """After a run stopped by an error: True if an epoch finished (history.json is written at
    the end of each), so `work` stays for --resume; else `work` is removed (it would hold only
    the vocabulary) and False."""
    if (work / "history.json").is_file():
        return True
    shutil.rmtree(work, ignore_errors=True)
    return False


def diverged(work: Path, lr: float, what: str) -> UsageError:
    """The error for a run whose numbers blew up (`work` kept or removed: kept_for_resume)."""
    advice = "try a smaller --lr"
    if kept_for_resume(work):
        kept = f"{work} keeps the finished epochs: --resume continues from the last one"
        return UsageError(f"{what} (learning rate {lr}); {kept}, or delete it and {advice}")
    return UsageError(f"{what} (learning rate {lr}); nothing was saved; {advice}")


def disk_full(work: Path, e: Exception) -> ArtifactError:
    """The error for a run stopped by DiskSpaceGuard (`work` kept or removed likewise)."""
    if kept_for_resume(work):
        return ArtifactError(f"{e}; {work} keeps the finished epochs: free space, then --resume")
    return ArtifactError(f"{e}; nothing was saved")


def check_resumed_config(work: Path, overrides: dict[str, str], config: Any) -> None:
    """--resume keeps the run's config: a --set may repeat it (the same command line plus
    --resume) but not change it."""
    try:
        recorded = json.loads((work / "run.json").read_text())["config"]
        if not isinstance(recorded, dict):
            raise TypeError("config is not an object")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"{work / 'run.json'}: corrupt ({e}); delete {work}") from e
    defaults = type(config)()
    for k, v in overrides.items():
        kept = recorded.get(k, getattr(defaults, k))
        if kept != getattr(config, k):
            raise UsageError(f"--set {k}={v}: the run in {work} has {k}={kept}; --resume keeps it")
