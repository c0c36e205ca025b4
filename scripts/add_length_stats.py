"""Adds box-length statistics to an artifact made before they existed (e.g. models/default).

`memebot train` writes them into templates.json itself; artifacts from before 2026-11-28 lack
them, and `calibrated` decoding then falls back to the article's threshold rule. This rebuilds
the template table from the same data (the fingerprint must match the artifact's), checks that
slugs, slots and box counts are unchanged, and rewrites templates.json and its checksum in a
copy of the artifact that replaces the original by rename. The weights are untouched.

    .venv/bin/python scripts/add_length_stats.py models/default --data ../shared/data/imgflip575k
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from memebot.artifact.meta import ArtifactMeta, amend_artifact, read_meta
from memebot.artifact.templates import TemplateTable
from training.prepare import prepare


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--data", type=Path, required=True, help="the data the model was trained on")
    p.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    args = p.parse_args()

    meta = read_meta(args.model)
    prep = prepare(args.data, cache_dir=args.cache_dir)
    if prep.fingerprint != meta.data_fingerprint:
        sys.exit(f"error: {args.data} is not the data {args.model} was trained on (fingerprint)")
    old = TemplateTable.load(args.model / "templates.json")
    new = prep.build_templates()
    same = [(e.slug, e.slot, e.box_count) for e in old.entries] == [
        (e.slug, e.slot, e.box_count) for e in new.entries
    ]
    if not same:
        sys.exit("error: the rebuilt template table differs in slugs, slots or box counts")

    def edit(tmp: Path, meta: ArtifactMeta) -> None:
        new.save(tmp / "templates.json")
        meta.extra = {
            **(meta.extra or {}),
            "amended": {
                "templates.json": "box-length statistics added by scripts/add_length_stats.py",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        }

    amend_artifact(args.model, edit)
    print(f"{args.model}: templates.json now carries box-length statistics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
