"""Dev helper: a contact sheet of template images with a grid, to measure text boxes by eye."""

import glob
import sys

from PIL import Image, ImageDraw

names = sys.argv[2:]
root = sys.argv[1]
cols = 4
tw, th = 300, 300
sheet = Image.new("RGB", (cols * tw, ((len(names) + cols - 1) // cols) * (th + 20)), "white")
d = ImageDraw.Draw(sheet)
for i, n in enumerate(names):
    p = (glob.glob(f"{root}/{n}.*") or [None])[0]
    x, y = (i % cols) * tw, (i // cols) * (th + 20)
    if p:
        im = Image.open(p).convert("RGB").resize((tw - 10, th - 10))
        g = ImageDraw.Draw(im)
        for k in range(1, 10):
            g.line(
                [(k * (tw - 10) / 10, 0), (k * (tw - 10) / 10, th)],
                fill="red" if k == 5 else "yellow",
                width=1,
            )
            g.line(
                [(0, k * (th - 10) / 10), (tw, k * (th - 10) / 10)],
                fill="red" if k == 5 else "yellow",
                width=1,
            )
        sheet.paste(im, (x, y + 20))
    d.text((x + 2, y + 2), n[:40], fill="black")
sheet.save("/tmp/sheet.png")
