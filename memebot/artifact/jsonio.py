"""Small JSON files of an artifact: written pretty, read with a one-line error on failure."""

from __future__ import annotations

import json
from pathlib import Path

from memebot.errors import ArtifactError


def write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")


def read_json(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ArtifactError(f"{path}: missing ({what})") from e
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: cannot read {what} ({e})") from e
