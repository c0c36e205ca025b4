"""Rendering: every catalog entry with short, long and odd captions; text stays in its box.

Rendered images are written to tests/output/render/ for a human to look at.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from engine.catalog import Catalog, fallback_template
from engine.render import TextBox, draw_box, fit_text, placeholder, render
from harness.skips import skip_or_fail
from memebot.settings import Settings

OUT = Path(__file__).resolve().parent / "output" / "render"
CATALOG = Catalog.load()
CAPTIONS = {
    "short": ["ok"],
    "long": [
        "when you finally understand the homework but the teacher already moved on to the next "
        "chapter and now you are lost again and again"
    ],
    "odd": [
        "supercalifragilisticexpialidocious-antidisestablishmentarianism!!!",
        "émoji 🎉 ünïcödé ∑",
    ],
}


def _image_for(slug: str) -> Image.Image:
    """The template's real image: its size and aspect are part of what is tested."""
    t = CATALOG.lookup(slug)
    path = Settings.from_env().data_dir / "templates" / "img" / (t.image or "")
    if not (t.image and path.is_file()):
        skip_or_fail(f"template image {path} not found (set MEMEBOT_DATA_DIR)")
    return Image.open(path)


def inside(
    placed_bbox: tuple[int, int, int, int], box: TextBox, size: tuple[int, int], slack: int = 3
) -> bool:
    W, H = size
    left, top, right, bottom = placed_bbox
    return (
        left >= box.x * W - slack
        and top >= box.y * H - slack
        and right <= (box.x + box.w) * W + slack
        and bottom <= (box.y + box.h) * H + slack
    )


@pytest.mark.parametrize("kind", list(CAPTIONS))
@pytest.mark.parametrize("slug", [t.slug for t in CATALOG.templates])
def test_every_template_renders_inside_its_boxes(slug: str, kind: str) -> None:
    t = CATALOG.lookup(slug)
    img = _image_for(slug)
    texts = (CAPTIONS[kind] * t.box_count)[: t.box_count]
    data, placed = render(image=img, boxes=t.layout(t.box_count), texts=texts, max_width=800)
    out = Image.open(io.BytesIO(data))
    assert out.format == "JPEG" and out.width <= 800
    for box, p in zip(t.layout(t.box_count), placed, strict=True):
        assert p.lines, f"{slug}: nothing drawn"
        assert inside(p.bbox, box, out.size), (slug, kind, p, box)
    if kind == "long" or slug in ("distracted-boyfriend", "drake-hotline-bling", "two-buttons"):
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{slug}-{kind}.jpg").write_bytes(data)


def test_larger_box_gets_larger_font() -> None:
    small, _ = fit_text("hello world", box_w=200, box_h=50, max_px=200)
    big, _ = fit_text("hello world", box_w=800, box_h=200, max_px=200)
    assert big > small


def test_long_word_is_broken_to_fit() -> None:
    from engine.render import _font

    size, lines = fit_text("a" * 300, box_w=100, box_h=400, max_px=60)
    assert len(lines) > 1 and "".join(lines) == "a" * 300
    assert all(_font(size).getlength(line) <= 100 for line in lines)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_formats_and_max_width(fmt: str) -> None:
    t = fallback_template("custom thing")
    data, _ = render(
        image=Image.new("RGB", (2000, 1000)),
        boxes=t.layout(2),
        texts=["top", "bottom"],
        fmt=fmt,
        max_width=500,
    )
    im = Image.open(io.BytesIO(data))
    assert im.format == {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt]
    assert im.size == (500, 250)


def test_unknown_format_refused() -> None:
    with pytest.raises(ValueError, match="gif"):
        render(image=Image.new("RGB", (10, 10)), boxes=[], texts=[], fmt="gif")


def test_placeholder_names_the_template() -> None:
    img = placeholder(name="Distracted Boyfriend")
    assert img.size == (800, 600) and len(set(img.get_flattened_data())) > 2  # background plus text


def test_more_texts_than_layout_boxes_stack_in_bands() -> None:
    t = CATALOG.lookup("success-kid")
    boxes = t.layout(4)
    assert len(boxes) == 4 and [b.y for b in boxes] == [0.0, 0.25, 0.5, 0.75]


@pytest.mark.parametrize(
    ("text", "box_w", "box_h"),
    [
        ("ME", 300, 80),
        ("A NEW SIDE PROJECT I WILL NEVER FINISH", 400, 300),
        ("WHEN THE TEACHER SAYS THE TEST IS OPEN BOOK BUT THE BOOK IS IN LATIN", 520, 160),
        ("AVAVAV WAWA TYPOGRAPHY KERNING LLAMA", 230, 400),
        ("ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE", 900, 90),
    ],
)
def test_fast_size_search_matches_the_exact_one(text: str, box_w: int, box_h: int) -> None:
    """Scaled word widths pick the same size as measuring every line (within hinting's
    one pixel), and the lines it returns really fit."""
    from engine.render import _fit_exact, _font, _line_height

    size, lines = fit_text(text, box_w=box_w, box_h=box_h, max_px=120)
    exact_size, _ = _fit_exact(text, box_w=box_w, box_h=box_h, max_px=120)
    assert abs(size - exact_size) <= 1
    font = _font(size)
    assert all(font.getlength(line) <= box_w for line in lines)
    assert len(lines) * _line_height(font) <= box_h
    assert " ".join(lines).split() == text.split()


# What a caption may hold: the engine accepts printable ASCII only (clients fold the rest,
# memebot/text.py), so each of those characters must be drawn as itself.
PRINTABLE = "".join(chr(c) for c in range(33, 127))


def _drawn(text: str) -> bytes:
    im = Image.new("L", (120, 120))
    draw_box(im, TextBox(0.0, 0.0, 1.0, 1.0, style="as-is", outline="none"), text)
    return im.tobytes()


def test_every_printable_character_has_its_own_glyph() -> None:
    """None falls back to the font's missing-glyph box (what a character it lacks draws)."""
    missing = _drawn("\uffff")  # no font has a glyph for a noncharacter
    assert any(missing), "the missing-glyph box is drawn"
    blank = bytes(120 * 120)
    lacking = [ch for ch in PRINTABLE if _drawn(ch) in (missing, blank)]
    assert lacking == [], lacking


def test_a_caption_is_drawn_as_it_holds() -> None:
    """Every word of the caption, in order, case and punctuation kept (style as-is); the
    template's capitals with style upper; only runs of spaces collapse."""
    caption = "Don't PANIC... it's 50% off! (really) #1 @you ~{x} [y] <z> ^_^ \\o/ a+b=c; \"q\"`"
    img = Image.new("RGB", (1600, 400))
    placed = draw_box(img, TextBox(0.0, 0.0, 1.0, 1.0, style="as-is"), caption)
    assert " ".join(placed.lines) == caption
    upper = draw_box(img, TextBox(0.0, 0.0, 1.0, 1.0), "when  the wifi\tworks")
    assert " ".join(upper.lines) == "WHEN THE WIFI WORKS"
    assert set(caption) - {" "} <= set(PRINTABLE)
