"""What the bot tells about an uploaded image before the engine captions it."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

# Memes are still images: the engine captions an animation's first frame. Said plainly so
# nobody waits for a moving meme.
STILL_NOTE = (
    "Your image is animated; memes here are still images, so I captioned its first frame "
    "and the meme does not move."
)


def is_animated(data: bytes) -> bool:
    """Whether the file has more than one frame (GIF, WebP, APNG). Unreadable: False (the
    engine refuses it with its own message)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return bool(getattr(im, "is_animated", False))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return False
