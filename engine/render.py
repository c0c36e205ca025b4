"""Pure rendering: template image + caption boxes -> encoded image bytes.

Every function here is synchronous and side-effect free (callers run it off the event loop
with `asyncio.to_thread`). Text is white with a black outline in Anton (an Impact-like open
font shipped by the `fontpkg-anton` package), word-wrapped at the largest size that fits its
box; words too long for the box at the smallest size are broken.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from memebot.choices import FORMATS

MIN_FONT_PX = 10  # below this, words are broken instead of shrunk further
LINE_SPACING = 1.1
REF_PX = 100  # words are measured once at this size and scaled during the size search


@dataclass(frozen=True)
class TextBox:
    x: float  # left edge as a fraction of the image width
    y: float  # top edge as a fraction of the image height
    w: float  # width fraction
    h: float  # height fraction
    style: str = "upper"  # upper | as-is
    color: str = "white"
    align: str = "center"  # left | center | right
    outline: str = "black"  # "none" for dark text on light panels and speech bubbles


@dataclass(frozen=True)
class Placed:
    """Where a box's text ended up (pixels), for tests and alt-text tooling."""

    lines: tuple[str, ...]
    font_px: int
    bbox: tuple[int, int, int, int]  # left, top, right, bottom of the drawn text


def font_path() -> Path:
    import fontpkg_anton

    return Path(fontpkg_anton.ROOT) / "files" / "Anton-Regular.ttf"


@lru_cache(maxsize=256)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path()), size)


def _width(font: ImageFont.FreeTypeFont, text: str) -> float:
    return font.getlength(text)


def _break_word(font: ImageFont.FreeTypeFont, word: str, max_w: float) -> list[str]:
    parts, cur = [], ""
    for ch in word:
        if cur and _width(font, cur + ch) > max_w:
            parts.append(cur)
            cur = ch
        else:
            cur += ch
    return [*parts, cur] if cur else parts


def wrap(
    font: ImageFont.FreeTypeFont, text: str, max_w: float, *, break_words: bool
) -> list[str] | None:
    """Greedy word wrap; None when a word does not fit and breaking is not allowed."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        if _width(font, word) > max_w:
            if not break_words:
                return None
            pieces = _break_word(font, word, max_w)
        else:
            pieces = [word]
        for piece in pieces:
            cand = f"{cur} {piece}" if cur else piece
            if _width(font, cand) <= max_w:
                cur = cand
            else:
                if cur:
                    lines.append(cur)
                cur = piece
    if cur:
        lines.append(cur)
    return lines


def _wrap_scaled(words: list[str], widths: list[float], space: float, max_w: float):
    """Greedy wrap from precomputed word widths; None when a word is wider than the box."""
    lines: list[str] = []
    cur: list[str] = []
    cur_w = 0.0
    for word, w in zip(words, widths, strict=True):
        if w > max_w:
            return None
        if cur and cur_w + space + w <= max_w:
            cur.append(word)
            cur_w += space + w
        else:
            if cur:
                lines.append(" ".join(cur))
            cur, cur_w = [word], w
    if cur:
        lines.append(" ".join(cur))
    return lines


def _line_height(font: ImageFont.FreeTypeFont) -> float:
    ascent, descent = font.getmetrics()
    return (ascent + descent) * LINE_SPACING


def fit_text(text: str, *, box_w: int, box_h: int, max_px: int) -> tuple[int, list[str]]:
    """Largest font size at which the wrapped text fits the box.

    The size search wraps the text about seven times per box; measuring every candidate line
    with FreeType each time was a third of a render. Words are measured once at REF_PX and
    scaled (advances grow linearly with size up to hinting), the best size's lines are then
    measured exactly, and if hinting or kerning made one too wide the exact search takes
    over from that size down."""
    words = text.split()
    ref_font = _font(REF_PX)
    ref = [_width(ref_font, w) for w in words]
    ref_space = _width(ref_font, " ")

    def fits_scaled(size: int) -> list[str] | None:
        k = size / REF_PX
        lines = _wrap_scaled(words, [w * k for w in ref], ref_space * k, box_w)
        if lines is None or len(lines) * _line_height(_font(size)) > box_h:
            return None
        return lines

    best = _largest_fitting(fits_scaled, max_px)
    if best and all(_width(_font(best[0]), line) <= box_w for line in best[1]):
        return best
    return _fit_exact(text, box_w=box_w, box_h=box_h, max_px=best[0] if best else max_px)


def _largest_fitting(
    fits: Callable[[int], list[str] | None], max_px: int
) -> tuple[int, list[str]] | None:
    """Binary search for the largest size in [MIN_FONT_PX, max_px] whose wrap fits."""
    lo, hi = MIN_FONT_PX, max(MIN_FONT_PX, max_px)
    best: tuple[int, list[str]] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        lines = fits(mid)
        if lines is not None:
            best = (mid, lines)
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def _fit_exact(text: str, *, box_w: int, box_h: int, max_px: int) -> tuple[int, list[str]]:
    """Binary search measuring every candidate line (the slow path)."""

    def fits(size: int, break_words: bool) -> list[str] | None:
        font = _font(size)
        lines = wrap(font, text, box_w, break_words=break_words)
        if lines is None or len(lines) * _line_height(font) > box_h:
            return None
        return lines

    best = _largest_fitting(lambda size: fits(size, break_words=False), max_px)
    if best:
        return best
    # Too long even at the smallest size without breaking: break words, shrink below the floor
    # as a last resort so the text stays inside its box.
    for size in range(MIN_FONT_PX, 3, -1):
        lines = fits(size, break_words=True)
        if lines is not None:
            return size, lines
    font = _font(4)
    return 4, wrap(font, text, box_w, break_words=True) or []


def draw_box(image: Image.Image, box: TextBox, text: str) -> Placed:
    W, H = image.size
    text = " ".join(text.split())
    if box.style == "upper":
        text = text.upper()
    pad = max(2, int(min(W, H) * 0.01))
    left, top = int(box.x * W) + pad, int(box.y * H) + pad
    bw, bh = max(1, int(box.w * W) - 2 * pad), max(1, int(box.h * H) - 2 * pad)
    if not text:
        return Placed((), 0, (left, top, left, top))
    size, lines = fit_text(text, box_w=bw, box_h=bh, max_px=max(MIN_FONT_PX, int(H * 0.12)))
    font = _font(size)
    stroke = 0 if box.outline == "none" else max(1, size // 14)
    lh = _line_height(font)
    block_h = len(lines) * lh
    y = top + (bh - block_h) / 2
    draw = ImageDraw.Draw(image)
    xs, x_end = [], []
    for line in lines:
        lw = _width(font, line)
        if box.align == "left":
            x: float = left
        elif box.align == "right":
            x = left + bw - lw
        else:
            x = left + (bw - lw) / 2
        draw.text(
            (x, y),
            line,
            font=font,
            fill=box.color,
            stroke_width=stroke,
            stroke_fill=None if box.outline == "none" else box.outline,
        )
        xs.append(x)
        x_end.append(x + lw)
        y += lh
    bbox = (
        int(min(xs)),
        int(top + (bh - block_h) / 2),
        int(max(x_end)),
        int(top + (bh + block_h) / 2),
    )
    return Placed(tuple(lines), size, bbox)


def placeholder(*, name: str, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A clean background with the template's name, used when no image can be had."""
    img = Image.new("RGB", size, (40, 44, 52))
    draw_box(img, TextBox(0.1, 0.4, 0.8, 0.2, style="as-is", color="#9aa4b2"), name)
    return img


def render(
    *,
    image: Image.Image,
    boxes: Sequence[TextBox],
    texts: Sequence[str],
    fmt: str = "jpeg",
    max_width: int | None = 1200,
    quality: int = 85,
) -> tuple[bytes, list[Placed]]:
    """Draw each text into its box and encode. Extra texts beyond the boxes are ignored."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    img = (
        image.convert("RGB") if fmt == "jpeg" or image.mode not in ("RGB", "RGBA") else image.copy()
    )
    if max_width and img.width > max_width:
        img = img.resize(
            (max_width, round(img.height * max_width / img.width)), Image.Resampling.LANCZOS
        )
    placed = [draw_box(img, b, t) for b, t in zip(boxes, texts, strict=False)]
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality, optimize=False)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality, method=0)
    else:
        img.save(buf, "PNG", compress_level=1)
    return buf.getvalue(), placed
