"""`memebot data download`: fetch the public ImgFlip575K files (resumable, progress bar).

Files already complete are skipped; a partial file continues with an HTTP Range request.
Tests never call this: it needs the network.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from memebot.errors import DataError

RAW = "https://raw.githubusercontent.com/schesa/ImgFlip575K_Dataset/master/dataset"
API = "https://api.github.com/repos/schesa/ImgFlip575K_Dataset/contents/dataset"


def _listing(folder: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{API}/{folder}", timeout=30) as r:
        items = json.load(r)
    return [i for i in items if isinstance(i, dict) and i.get("type") == "file"]


def _fetch(url: str, dest: Path, size: int | None, bar: tqdm) -> None:
    have = dest.stat().st_size if dest.exists() else 0
    if size is not None and have == size:
        bar.update(size)
        return
    part = dest.with_suffix(dest.suffix + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        mode = "ab" if have and r.status == 206 else "wb"
        bar.update(have if mode == "ab" else 0)
        with part.open(mode) as f:
            while chunk := r.read(1 << 16):
                f.write(chunk)
                bar.update(len(chunk))
    part.replace(dest)


def download(to: Path, folders: tuple[str, ...] = ("memes", "templates", "templates/img")) -> None:
    try:
        plan = [(f, _listing(f)) for f in folders]
        total = sum(int(i.get("size") or 0) for _, items in plan for i in items)  # type: ignore[call-overload]
        with tqdm(total=total, unit="B", unit_scale=True, desc="ImgFlip575K") as bar:
            for folder, items in plan:
                (to / folder).mkdir(parents=True, exist_ok=True)
                for item in items:
                    name = str(item["name"])
                    size = int(item["size"]) if item.get("size") is not None else None  # type: ignore[call-overload]
                    _fetch(f"{RAW}/{folder}/{name}", to / folder / name, size, bar)
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise DataError(
            f"download to {to} failed ({e}); run the same command again to resume"
        ) from e
