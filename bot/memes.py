"""Making a meme for a Discord user, without Discord: options from a style, the content filter
with bounded regeneration, and the record the store keeps."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, assert_never

from engine.client import Meme, checked
from engine.schema import MAX_SEED, MemeOptions
from memebot.choices import DEFAULT_STYLE, STYLES, FilterLevel, Style
from memebot.errors import MemebotError
from memebot.filtering import blocked


def style_options(style: Style) -> MemeOptions:
    """The engine decoding options (docs/ENGINE.md) behind each style /meme offers; mypy checks
    that every style in memebot.choices has a case."""
    match style:
        case "natural":
            # Captions as varied as people's, box lengths as theirs (docs/ENGINE.md, "The
            # default style"); one candidate: picking the likeliest of several makes them
            # alike again.
            return MemeOptions(decoding="natural", n_candidates=1)
        case "calibrated":
            return MemeOptions(decoding="calibrated")
        case "threshold":
            return MemeOptions(decoding="threshold")
        case "beam":
            return MemeOptions(decoding="beam")
        case "greedy":
            return MemeOptions(decoding="greedy")
        case "creative":
            # More surprising captions: nucleus sampling a little above temperature 1.
            return MemeOptions(decoding="top-k-top-p", temperature=1.15, top_k=40, top_p=0.92)
    assert_never(style)


# Built (and so checked by the engine's schema) when this module loads.
STYLE_OPTIONS: dict[Style, MemeOptions] = {s: style_options(s) for s in STYLES}
FILTER_RETRIES = 6  # new seeds tried when the filter blocks a caption
UPLOAD_TEMPLATE = "upload"  # the template name stored for a captioned attachment


class StartTextBlocked(MemebotError):
    def __init__(self) -> None:
        super().__init__(
            "This server's content filter does not allow that start text; try other words."
        )


class CaptionBlocked(MemebotError):
    def __init__(self) -> None:
        super().__init__(
            "This server's content filter does not allow that caption; try other words."
        )


class AllCaptionsFiltered(MemebotError):
    def __init__(self, tries: int) -> None:
        super().__init__(
            f"The {tries} captions I wrote were all blocked by this server's content filter; "
            "try again or pick another template."
        )


@dataclass(frozen=True)
class MemeAsk:
    """What a user asked for (the engine's request is built from it per seed)."""

    template: str
    start_text: str = ""
    style: Style = DEFAULT_STYLE
    boxes: int | None = None
    text: str = ""  # a caption the user wrote ('|' between boxes): rendered as is

    def engine_options(self, seed: int) -> MemeOptions:
        options: dict[str, Any] = {**STYLE_OPTIONS[self.style].to_body(), "seed": seed}
        if self.start_text:
            options["start"] = self.start_text
        if self.text:
            options["text"] = self.text
        if self.boxes is not None:
            options["boxes"] = self.boxes
        return checked(MemeOptions, **options)

    def stored_options(self) -> dict[str, Any]:
        """What the store keeps so 🔁 can make another with the same options."""
        out: dict[str, Any] = {
            "style": self.style,
            "start_text": self.start_text,
            "boxes": self.boxes,
        }
        return out | ({"text": self.text} if self.text else {})

    @classmethod
    def from_stored(cls, template: str, options: dict[str, Any]) -> MemeAsk:
        stored = options.get("style")
        style = next((s for s in STYLES if s == stored), DEFAULT_STYLE)  # a retired style too
        return cls(
            template=template,
            start_text=str(options.get("start_text") or ""),
            style=style,
            boxes=options.get("boxes"),
            text=str(options.get("text") or ""),
        )


async def make_clean_meme(
    generate: Callable[[int], Awaitable[Meme]],
    *,
    start_text: str,
    level: FilterLevel | str,
    rng: random.Random | None = None,
    retries: int = FILTER_RETRIES,
    check: Callable[[str, FilterLevel | str], bool] = blocked,
    written: str = "",
) -> Meme:
    """Call `generate(seed)` until a caption passes the filter (at most `retries` + 1 tries).

    The start text is checked first: a blocked start text is the user's mistake, not a retry.
    A `written` caption (the user's own) is checked before the engine renders it, as written
    and with its boxes joined by spaces (a word split across boxes); it is made once."""
    if written:
        joined = " ".join(written.split("|"))
        for text in (written, joined):
            if await asyncio.to_thread(check, text, level):
                raise CaptionBlocked()
        return await generate((rng or random.Random()).randint(0, MAX_SEED))
    # The checks run in a thread: a strict one takes ~7 ms (the first loads a model, ~2 s).
    start_blocked: bool = bool(start_text) and await asyncio.to_thread(check, start_text, level)
    if start_blocked:
        raise StartTextBlocked()
    rng = rng or random.Random()
    for _ in range(retries + 1):
        # Any seed the engine accepts: the store keeps it in a BigInteger column.
        meme = await generate(rng.randint(0, MAX_SEED))
        if not await asyncio.to_thread(check, " ".join(meme.boxes), level):
            return meme
    raise AllCaptionsFiltered(retries + 1)


def channel_is_nsfw(channel: object) -> bool:
    """Whether a channel is age-restricted (a thread: its parent). Unknown kinds are not."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def caption_text(meme: Meme) -> str:
    """The message text under the image: the caption, one box per line (Discord markdown
    escaped so a caption cannot ping or format)."""
    import discord

    lines = [discord.utils.escape_mentions(discord.utils.escape_markdown(b)) for b in meme.boxes]
    return "\n".join(f"> {line}" for line in lines if line) or "> …"
