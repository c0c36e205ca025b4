"""The content filter: captions that must be blocked at each level and ones that must pass,
and the regeneration loop that never shows a blocked caption."""

from __future__ import annotations

import asyncio
import random

import pytest

from bot.engine_client import Meme, Template
from bot.filtering import LEVELS, blocked
from bot.memes import AllCaptionsFiltered, StartTextBlocked, make_clean_meme

# Blocked at `standard` (and so at `strict`): slurs, sexual content, self-harm incitement,
# including spellings that dodge a plain word list.
STANDARD_BLOCKS = [
    "you are such a faggot",
    "stupid n1gger",
    "NIGGGA WHAT",
    "go back home you wetback",
    "look at this retard",
    "kill yourself",
    "just kys already",
    "K1LL YOURSELFFF",
    "go hang yourself nobody likes you",
    "you should die",
    "send nudes",
    "watching porn at school",
    "nice tits",
    "my dick is bigger",
    "when she says she is horny",
    "he raped the homework",
    "sexy time",
    "what a slut",
]
# Pass `standard`, blocked at `strict`: plain swearing and insults.
STRICT_BLOCKS = [
    "shit happens",
    "what the fuck is this",
    "FUCKING MONDAYS",
    "you piece of crap",
    "damn it",
    "this guy is an asshole",
    "bitch please",
    "wtf is going on",
    "shut up you idiot",
]
# Pass at every level: ordinary captions, and words that merely contain a listed stem.
ALWAYS_PASS = [
    "when my dog eats the homework",
    "one does not simply walk into mordor",
    "y u no answer the phone",
    "me: i will sleep early. also me at 3am",
    "my therapist says i am improving",
    "class dismissed",
    "the assassin creed of cooking",
    "i assume you know the password",
    "hello darkness my old friend",
    "cumulative grade point average",
    "reading dickens on a sunday",
    "a cocktail with grapes",
    "scunthorpe united won again",
    "the analysis is done",
    "shell script works first try",
    "kill the lights",
    "this exam will kill me",
    "",
]


@pytest.mark.parametrize("text", STANDARD_BLOCKS)
def test_standard_blocks(text: str) -> None:
    assert blocked(text, "standard") and blocked(text, "strict")
    assert not blocked(text, "off")


@pytest.mark.parametrize("text", STRICT_BLOCKS)
def test_strict_blocks_swearing_that_standard_lets_through(text: str) -> None:
    assert blocked(text, "strict")
    assert not blocked(text, "standard")


@pytest.mark.parametrize("text", ALWAYS_PASS)
@pytest.mark.parametrize("level", LEVELS)
def test_ordinary_captions_pass(text: str, level: str) -> None:
    assert not blocked(text, level)


def _meme(boxes: list[str], seed: int) -> Meme:
    return Meme(
        template=Template("two-buttons", "Two Buttons", 2, ()),
        boxes=boxes,
        image=b"",
        image_format="jpeg",
        alt_text=" / ".join(boxes),
        model_version="test",
        options={"seed": seed},
        timings_ms={},
    )


def test_blocked_captions_are_regenerated_with_new_seeds() -> None:
    captions = [["kill yourself", "now"], ["nice tits", "lol"], ["when the wifi", "works"]]
    seeds: list[int] = []

    async def generate(seed: int) -> Meme:
        seeds.append(seed)
        return _meme(captions[len(seeds) - 1], seed)

    meme = asyncio.run(
        make_clean_meme(generate, start_text="", level="standard", rng=random.Random(1))
    )
    assert meme.boxes == ["when the wifi", "works"] and len(set(seeds)) == 3


def test_bounded_retries_and_blocked_start_text() -> None:
    calls = 0

    async def always_rude(seed: int) -> Meme:
        nonlocal calls
        calls += 1
        return _meme(["shit", "happens"], seed)

    with pytest.raises(AllCaptionsFiltered):
        asyncio.run(make_clean_meme(always_rude, start_text="", level="strict", retries=3))
    assert calls == 4
    assert asyncio.run(make_clean_meme(always_rude, start_text="", level="standard")).boxes
    calls = 0
    with pytest.raises(StartTextBlocked):
        asyncio.run(make_clean_meme(always_rude, start_text="kys", level="standard"))
    assert calls == 0  # refused before the engine is asked
