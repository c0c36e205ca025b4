"""Fitting a rendered meme under Discord's attachment size limit: a followup whose file is
larger is refused (413), so the bot re-encodes the image as JPEG, at lower quality and then
smaller, until it fits, or says politely that it cannot be posted here."""

from __future__ import annotations

import io
from pathlib import PurePath

from PIL import Image

from bot.errors import UserError

TOO_LARGE = (
    "That meme came out larger than this server lets me upload, even made smaller; "
    "try another template or a smaller image."
)
QUALITIES = (85, 70, 50)  # JPEG qualities tried at each size, best first
SMALLEST_SIDE = 64  # below this a meme cannot be read: give up instead


def fit_image(data: bytes, filename: str, limit: int) -> tuple[bytes, str]:
    """`(data, filename)` unchanged when within `limit` bytes, else a JPEG re-encode that fits
    (an animated GIF becomes its first frame); UserError when nothing readable fits."""
    if len(data) <= limit:
        return data, filename
    name = PurePath(filename).stem + ".jpg"
    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")  # JPEG has no alpha; the first frame of an animation
    while min(rgb.size) >= SMALLEST_SIDE:
        for quality in QUALITIES:
            out = io.BytesIO()
            rgb.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= limit:
                return out.getvalue(), name
        rgb = rgb.resize((rgb.width * 3 // 4, rgb.height * 3 // 4), Image.Resampling.LANCZOS)
    raise UserError(TOO_LARGE)
