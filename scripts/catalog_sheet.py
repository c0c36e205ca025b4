"""Dev helper: a contact sheet of template images with a 10% grid, to measure text boxes by eye
when editing engine/catalog.json.

    python scripts/catalog_sheet.py IMAGES_DIR Drake-Hotline-Bling Two-Buttons --out sheet.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

TILE = 300  # pixels per template, square
COLS = 4


def grid(im: Image.Image) -> None:
    """Lines every tenth of the width and height; the middle ones red."""
    g = ImageDraw.Draw(im)
    w, h = im.size
    for k in range(1, 10):
        colour = "red" if k == 5 else "yellow"
        g.line([(k * w / 10, 0), (k * w / 10, h)], fill=colour, width=1)
        g.line([(0, k * h / 10), (w, k * h / 10)], fill=colour, width=1)


def sheet(root: Path, names: list[str]) -> Image.Image:
    rows = (len(names) + COLS - 1) // COLS
    out = Image.new("RGB", (COLS * TILE, rows * (TILE + 20)), "white")
    label = ImageDraw.Draw(out)
    for i, name in enumerate(names):
        x, y = (i % COLS) * TILE, (i // COLS) * (TILE + 20)
        found = sorted(root.glob(f"{name}.*"))
        if found:
            im = Image.open(found[0]).convert("RGB").resize((TILE - 10, TILE - 10))
            grid(im)
            out.paste(im, (x, y + 20))
        label.text((x + 2, y + 2), name[:40] + ("" if found else " (no image)"), fill="black")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("images", type=Path, help="directory of template images")
    p.add_argument("names", nargs="+", help="image file names without their extension")
    p.add_argument("--out", type=Path, default=Path("sheet.png"), help="PNG to write")
    args = p.parse_args()
    sheet(args.images, args.names).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
