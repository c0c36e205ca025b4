"""Writes engine/catalog.json, the project's template catalog, from the shared data.

Facts come from ../shared/data: Imgflip ids, names, aliases, image files (imgflip575k/templates)
and measured text positions (memegen-layouts, MIT). Where memegen has no layout for an Imgflip
template, or its image differs from Imgflip's, the boxes below were measured by eye on a 10x10
grid over the Imgflip image (scripts/catalog_sheet.py). Re-run after editing this file:

    .venv/bin/python scripts/build_catalog.py ../shared/data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from training.data import slugify

# Imgflip slug -> memegen layout id, where memegen's picture is the same as Imgflip's.
MEMEGEN = {
    "10-guy": "tenguy",
    "aaaaand-its-gone": "gone",
    "aint-nobody-got-time-for-that": "aint-got-time",
    "ancient-aliens": "aag",
    "archer": "ants",
    "awkward-moment-sealion": "ams",
    "bad-luck-brian": "blb",
    "brace-yourselves-x-is-coming": "winter",
    "but-thats-none-of-my-business": "kermit",
    "captain-picard-facepalm": "facepalm",
    "confession-bear": "cb",
    "conspiracy-keanu": "keanu",
    "creepy-condescending-wonka": "wonka",
    "disaster-girl": "disastergirl",
    "distracted-boyfriend": "db",
    "epic-handshake": "handshake",
    "expanding-brain": "gb",
    "first-world-problems": "fwp",
    "futurama-fry": "fry",
    "grumpy-cat": "grumpycat",
    "hide-the-pain-harold": "harold",
    "i-should-buy-a-boat-cat": "boat",
    "is-this-a-pigeon": "pigeon",
    "laughing-men-in-suits": "atis",
    "left-exit-12-off-ramp": "exit",
    "look-at-me": "captain",
    "matrix-morpheus": "morpheus",
    "mocking-spongebob": "spongebob",
    "mugatu-so-hot-right-now": "sohot",
    "one-does-not-simply": "mordor",
    "oprah-you-get-a": "oprah",
    "philosoraptor": "philosoraptor",
    "put-it-somewhere-else-patrick": "patrick",
    "roll-safe-think-about-it": "rollsafe",
    "scumbag-steve": "ss",
    "see-nobody-cares": "dodgson",
    "sparta-leonidas": "sparta",
    "success-kid": "success",
    "that-would-be-great": "officespace",
    "the-most-interesting-man-in-the-world": "interesting",
    "third-world-skeptical-kid": "sk",
    "too-damn-high": "toohigh",
    "tuxedo-winnie-the-pooh": "pooh",
    "two-buttons": "ds",
    "who-killed-hannibal": "wkh",
    "x-all-the-y": "xy",
    "x-x-everywhere": "buzz",
    "y-u-no": "yuno",
    "yall-got-any-more-of-that": "yallgot",
    "yo-dawg-heard-you": "yodawg",
}

TOP_BOTTOM = [[0.0, 0.0, 1.0, 0.22, "upper", "white"], [0.0, 0.78, 1.0, 0.22, "upper", "white"]]
INK = "black"  # text drawn on white panels or speech bubbles: black, no outline

# Measured by eye on the Imgflip images: [x, y, w, h, style, color]
OWN: dict[str, list[list[object]]] = {
    "bad-pun-dog": [
        [0.0, 0.0, 1.0, 0.14, "upper", "white"],
        [0.0, 0.34, 1.0, 0.14, "upper", "white"],
        [0.0, 0.68, 1.0, 0.14, "upper", "white"],
    ],
    "batman-slapping-robin": [
        [0.02, 0.01, 0.45, 0.22, "upper", INK],
        [0.53, 0.01, 0.45, 0.2, "upper", INK],
    ],
    "be-like-bill": [
        [0.04, 0.05, 0.58, 0.2, "as-is", INK],
        [0.04, 0.27, 0.58, 0.2, "as-is", INK],
        [0.04, 0.49, 0.58, 0.2, "as-is", INK],
        [0.04, 0.71, 0.58, 0.2, "as-is", INK],
    ],
    "bernie-i-am-once-again-asking-for-your-support": [
        [0.0, 0.0, 1.0, 0.2, "upper", "white"],
        [0.05, 0.82, 0.9, 0.17, "as-is", "white"],
    ],
    "blank-nut-button": [
        [0.02, 0.58, 0.5, 0.28, "upper", "white"],
        [0.45, 0.02, 0.53, 0.3, "upper", "white"],
    ],
    "boardroom-meeting-suggestion": [
        [0.3, 0.0, 0.55, 0.1, "as-is", INK],
        [0.03, 0.38, 0.25, 0.09, "as-is", INK],
        [0.33, 0.38, 0.22, 0.09, "as-is", INK],
        [0.6, 0.37, 0.3, 0.11, "as-is", INK],
    ],
    "change-my-mind": [[0.38, 0.6, 0.38, 0.2, "upper", INK]],
    "doge": [
        [0.05, 0.04, 0.42, 0.12, "as-is", "white"],
        [0.55, 0.2, 0.42, 0.12, "as-is", "white"],
        [0.04, 0.45, 0.4, 0.12, "as-is", "white"],
        [0.56, 0.62, 0.42, 0.12, "as-is", "white"],
        [0.1, 0.84, 0.6, 0.12, "as-is", "white"],
    ],
    "drake-hotline-bling": [[0.5, 0.0, 0.5, 0.5, "as-is", INK], [0.5, 0.5, 0.5, 0.5, "as-is", INK]],
    "finding-neverland": [
        [0.0, 0.21, 1.0, 0.12, "upper", "white"],
        [0.0, 0.57, 1.0, 0.12, "upper", "white"],
        [0.0, 0.87, 1.0, 0.13, "upper", "white"],
    ],
    "hard-to-swallow-pills": [[0.12, 0.62, 0.76, 0.3, "as-is", INK]],
    "inhaling-seagull": [
        [0.0, 0.01, 1.0, 0.11, "upper", "white"],
        [0.0, 0.26, 1.0, 0.11, "upper", "white"],
        [0.0, 0.51, 1.0, 0.11, "upper", "white"],
        [0.0, 0.76, 1.0, 0.11, "upper", "white"],
    ],
    "american-chopper-argument": [
        [0.0, 0.1 + 0.2 * i, 1.0, 0.1, "upper", "white"] for i in range(5)
    ],
    "marked-safe-from": [[0.05, 0.57, 0.9, 0.14, "as-is", INK]],
    "monkey-puppet": [
        [0.02, 0.02, 0.96, 0.33, "as-is", INK],
        [0.0, 0.8, 1.0, 0.2, "upper", "white"],
    ],
    "running-away-balloon": [
        [0.02, 0.3, 0.33, 0.12, "upper", "white"],
        [0.6, 0.12, 0.38, 0.16, "upper", INK],
        [0.0, 0.82, 0.3, 0.12, "upper", "white"],
        [0.35, 0.75, 0.3, 0.12, "upper", "white"],
        [0.66, 0.58, 0.32, 0.16, "upper", INK],
    ],
    "sad-pablo-escobar": [
        [0.0, 0.36, 1.0, 0.13, "upper", "white"],
        [0.0, 0.85, 0.5, 0.15, "upper", "white"],
        [0.5, 0.85, 0.5, 0.15, "upper", "white"],
    ],
    "spongebob-ight-imma-head-out": [[0.02, 0.01, 0.96, 0.22, "as-is", INK]],
    "surprised-pikachu": [
        [0.02, 0.0, 0.96, 0.13, "as-is", INK],
        [0.02, 0.13, 0.96, 0.13, "as-is", INK],
        [0.02, 0.26, 0.96, 0.13, "as-is", INK],
    ],
    "the-rock-driving": [
        [0.55, 0.04, 0.43, 0.13, "as-is", INK],
        [0.58, 0.37, 0.4, 0.13, "as-is", INK],
    ],
    "the-scroll-of-truth": [[0.08, 0.56, 0.3, 0.35, "as-is", INK]],
    "this-is-where-id-put-my-trophy-if-i-had-one": [
        [0.0, 0.0, 1.0, 0.18, "upper", "white"],
        [0.0, 0.82, 1.0, 0.18, "upper", "white"],
    ],
    "trump-bill-signing": [
        [0.0, 0.02, 1.0, 0.2, "upper", "white"],
        [0.42, 0.38, 0.46, 0.5, "as-is", INK],
    ],
    "uno-draw-25-cards": [
        [0.05, 0.33, 0.28, 0.17, "as-is", INK],
        [0.36, 0.75, 0.62, 0.25, "upper", "white"],
    ],
    "woman-yelling-at-cat": [
        [0.0, 0.0, 0.5, 0.25, "upper", "white"],
        [0.5, 0.0, 0.5, 0.25, "upper", "white"],
    ],
    "who-would-win": [[0.03, 0.2, 0.44, 0.75, "as-is", INK], [0.53, 0.2, 0.44, 0.75, "as-is", INK]],
}
# Box counts that differ from the number of layout boxes (extra boxes are optional labels).
BOX_COUNT = {"two-buttons": 2}


def _clamp(v: float) -> float:
    return round(min(max(float(v), 0.0), 1.0), 4)


def _box(
    x: float, y: float, w: float, h: float, style: str, color: str, align: str = "center"
) -> dict[str, object]:
    x, y = _clamp(x), _clamp(y)
    return {
        "x": x,
        "y": y,
        "w": _clamp(min(w, 1 - x)),
        "h": _clamp(min(h, 1 - y)),
        "style": "upper" if style == "upper" else "as-is",
        "color": color,
        "outline": "none" if color == INK else "black",
        "align": align,
    }


def main(shared: Path) -> None:
    tdir = shared / "imgflip575k" / "templates"
    entries = []
    for meta_path in sorted(tdir.glob("*.json")):
        t = json.loads(meta_path.read_text())
        stem = meta_path.stem
        slug = slugify(stem)
        name = t["title"].removesuffix(" Meme Template").strip()
        img = next(iter(sorted((tdir / "img").glob(f"{stem}.*"))), None)
        if slug in OWN:
            boxes = [_box(*b) for b in OWN[slug]]  # type: ignore[arg-type]
            source = "measured"
        elif slug in MEMEGEN:
            y = yaml.safe_load((shared / "memegen-layouts" / f"{MEMEGEN[slug]}.yml").read_text())
            boxes = [
                _box(
                    b["anchor_x"],
                    b["anchor_y"],
                    b["scale_x"],
                    b["scale_y"],
                    b.get("style", "upper"),
                    b.get("color", "white"),
                    b.get("align", "center"),
                )
                for b in y["text"]
            ]
            source = f"memegen:{MEMEGEN[slug]}"
        else:
            boxes = [_box(*b) for b in TOP_BOTTOM]  # type: ignore[arg-type]
            source = "top-bottom"
        entries.append(
            {
                "slug": slug,
                "name": name,
                "imgflip_id": int(t["template_id"]),
                "aliases": [
                    a.strip() for a in t.get("alternative_names", "").split(",") if a.strip()
                ],
                "box_count": BOX_COUNT.get(slug, len(boxes)),
                "image": img.name if img else None,
                "image_url": t.get("template_url"),
                "boxes": boxes,
                "layout_source": source,
            }
        )
    out = Path(__file__).resolve().parent.parent / "engine" / "catalog.json"
    out.write_text(json.dumps({"version": 1, "templates": entries}, indent=1) + "\n")
    print(f"wrote {out}: {len(entries)} templates")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
