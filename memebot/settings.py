"""Settings read once from the environment into one typed object, passed down explicitly.

Every variable is optional; the defaults are the embedded ones (shipped model, CPU, local dirs).
See docs/SETTINGS.md for the table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    # Development and CI keep the shared data beside the checkout.
    return REPO_ROOT.parent / "shared" / "data" / "imgflip575k"


@dataclass(frozen=True)
class Settings:
    data_dir: Path  # MEMEBOT_DATA_DIR: an ImgFlip575K directory (memes/, templates/)
    cache_dir: Path  # MEMEBOT_CACHE_DIR: cleaned-data cache, downloaded images
    model_dir: Path  # MEMEBOT_MODEL: the artifact `generate` and the engine load
    output_dir: Path  # MEMEBOT_OUTPUT_DIR: where `generate` writes images

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home_cache = Path(env.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "memebot"
        return cls(
            data_dir=Path(env.get("MEMEBOT_DATA_DIR") or _default_data_dir()),
            cache_dir=Path(env.get("MEMEBOT_CACHE_DIR") or home_cache),
            model_dir=Path(env.get("MEMEBOT_MODEL") or REPO_ROOT / "models" / "default"),
            output_dir=Path(env.get("MEMEBOT_OUTPUT_DIR") or Path.cwd() / "out"),
        )
