"""The content filter: what each level must block and what it must let through, and the
regeneration loop that never shows a blocked caption."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import pytest

from bot.memes import AllCaptionsFiltered, StartTextBlocked, make_clean_meme
from engine.client import Meme
from engine.schema import TemplateInfo
from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.engine import running_engine
from memebot.choices import FILTER_LEVELS, FilterLevel
from memebot.filtering import (
    ContentFilter,
    FilterOffNeedsNsfw,
    blocked,
    check_level_allowed,
    level_in_channel,
    normalise,
)

# (text, the lowest level that blocks it, its category there)
BLOCKED = [
    # slurs, including spellings that dodge a plain word list
    ("look at this f*ggot", "standard", "slur"),
    ("what a faggot", "standard", "slur"),
    ("n1gg3r", "standard", "slur"),
    ("NIGGAS be like", "standard", "slur"),
    ("ONLY NIQQA LIKE ME", "standard", "slur"),
    ("you retard", "standard", "slur"),
    ("k i k e", "standard", "slur"),
    # sexual content
    ("send nudes", "standard", "sexual"),
    ("when she gives you a blowjob", "standard", "sexual"),
    ("pornhub premium", "standard", "sexual"),
    ("i am so horny", "standard", "sexual"),
    ("sexy time", "standard", "sexual"),
    ("he r4ped her", "standard", "sexual"),
    # self-harm incitement
    ("kys", "standard", "self-harm"),
    ("k y s", "standard", "self-harm"),
    ("just go kill yourself", "standard", "self-harm"),
    ("KILL URSELF / NOW", "standard", "self-harm"),
    ("drink bleach", "standard", "self-harm"),
    ("you should die", "standard", "self-harm"),
    # profanity: strict only
    ("what the fuck", "strict", "profanity"),
    ("fuuuuuck mondays", "strict", "profanity"),
    ("f u c k", "strict", "profanity"),
    ("this sucks ass", "strict", "profanity"),
    ("damn girl u fine", "strict", "profanity"),
    ("where is the / damn battle man!!", "strict", "profanity"),
    ("what the hell", "strict", "profanity"),
    ("sh1t happens", "strict", "profanity"),
    ("wtf is this", "strict", "profanity"),
    ("bitches be like", "strict", "profanity"),
]

PASSES_STRICT = [
    "when my dog eats the homework",
    "i love my mom",
    "dad / mom / why",
    "kill thanos / let iron man die / how we all felt",
    "class is over",
    "assassins creed",
    "hello there / general kenobi",
    "the shell game",
    "spicy food / more spicy food",
    "cumin and pepper",
    "my therapist says",
    "analysis paralysis",
    "a cockatoo",
    "grape juice",
    "scunthorpe united",
    "he killed my / senpai",
    "one does not simply / walk into mordor",
]

ORDER = {"off": 0, "standard": 1, "strict": 2}


@pytest.fixture(scope="module")
def content_filter() -> ContentFilter:
    return ContentFilter()


@pytest.mark.parametrize(("text", "lowest", "category"), BLOCKED)
def test_blocked_from_its_level_up(
    content_filter: ContentFilter, text: str, lowest: str, category: str
) -> None:
    for level in FILTER_LEVELS:
        v = content_filter.check(text, level)
        should = ORDER[level] >= ORDER[lowest]
        assert v.blocked is should, (text, level)
        if should:
            assert v.category == category and v.match


@pytest.mark.parametrize("text", PASSES_STRICT)
def test_harmless_text_passes_every_level(content_filter: ContentFilter, text: str) -> None:
    for level in FILTER_LEVELS:
        assert not content_filter.check(text, level).blocked, (text, level)


def test_the_lists_catch_what_the_library_misses(content_filter: ContentFilter) -> None:
    """The reason for the word lists: alt-profanity-check scores these low."""
    from profanity_check import predict_prob

    missed = ["kys", "drink bleach", "n1gger", "send nudes", "f u c k"]
    assert all(p < 0.5 for p in predict_prob(missed))
    assert all(content_filter.check(t, "strict").blocked for t in missed)


def test_the_model_adds_insults_at_strict() -> None:
    with_model, lists_only = ContentFilter(), ContentFilter(use_model=False)
    text = "you are a complete idiot"
    assert with_model.check(text, "strict").category == "profanity-model"
    assert not lists_only.check(text, "strict").blocked
    assert not with_model.check(text, "standard").blocked


def test_off_blocks_nothing(content_filter: ContentFilter) -> None:
    texts = [t for t, _, _ in BLOCKED]
    assert not any(v.blocked for v in content_filter.check_many(texts, "off"))


def test_check_many_matches_check(content_filter: ContentFilter) -> None:
    texts = [t for t, _, _ in BLOCKED] + PASSES_STRICT
    for level in FILTER_LEVELS:
        assert content_filter.check_many(texts, level) == [
            content_filter.check(t, level) for t in texts
        ]


def test_unknown_level_is_refused(content_filter: ContentFilter) -> None:
    with pytest.raises(ValueError):
        content_filter.check("hi", "lenient")


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("K Y S", "kys"),
        ("n1gg3r!!", "nigger"),
        ("Sh!t / happens", "shit happens"),
        ("plan b", "plan b"),
        ("cumin", ""),
    ],
)
def test_normalise(raw: str, norm: str) -> None:
    assert normalise(raw) == norm


@pytest.mark.realdata
def test_levels_on_real_captions(real_data_dir: Path, content_filter: ContentFilter) -> None:
    """On real Imgflip captions: standard blocks some but few, strict blocks more."""
    caps = []
    for f in sorted((real_data_dir / "memes").glob("*.json"))[:20]:
        caps += [" / ".join(m["boxes"]) for m in json.loads(f.read_text())]
    sample = random.Random(0).sample(caps, 3000)
    share = {
        level: sum(v.blocked for v in content_filter.check_many(sample, level)) / len(sample)
        for level in FILTER_LEVELS
    }
    assert share["off"] == 0
    assert 0.005 < share["standard"] < 0.10
    assert share["standard"] < share["strict"] < 0.25


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
@pytest.mark.parametrize("level", FILTER_LEVELS)
def test_ordinary_captions_pass(text: str, level: str) -> None:
    assert not blocked(text, level)


def _meme(boxes: list[str], seed: int) -> Meme:
    return Meme(
        template=TemplateInfo(
            slug="two-buttons",
            name="Two Buttons",
            imgflip_id=None,
            aliases=[],
            box_count=2,
            image_url=None,
        ),
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


def test_the_checks_run_off_the_event_loop() -> None:
    """A strict check can take seconds (its first call loads a model): it must not stall the
    bot's event loop, so it runs in a thread while the loop keeps serving other work."""
    checked_texts: list[str] = []
    ticks = 0

    def slow_check(text: str, level: FilterLevel | str) -> bool:
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()  # no loop in this thread: not on the event loop
        time.sleep(0.2)
        checked_texts.append(text)
        return text == "kys"

    async def generate(seed: int) -> Meme:
        return _meme(["when the wifi", "works"], seed)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def go() -> Meme:
        tick = asyncio.create_task(ticker())
        try:
            return await make_clean_meme(
                generate, start_text="hello", level="strict", check=slow_check
            )
        finally:
            tick.cancel()

    meme = asyncio.run(go())
    assert meme.boxes == ["when the wifi", "works"]
    assert checked_texts == ["hello", "when the wifi works"]
    assert ticks >= 10  # the loop ran on during the 0.4 s of checks (a blocking call: 0)


# -- variants that dodge a plain word list, and innocent words that hold a listed one -------

# Blocked at `standard` (and so at `strict`): spacing, punctuation, digits and symbols,
# repeated letters, misspellings, compounds, and words split across spaces or boxes (`|`).
VARIANTS = [
    # spacing and punctuation between letters
    "n i g g e r",
    "n.i.g.g.e.r",
    "n-i-g-g-e-r",
    "n_i_g_g_a",
    "f a g g o t",
    "f.a.g",
    "k.y.s",
    "k-y-s",
    "k  y  s",
    "s e x y",
    "s.e.x",
    "p o r n",
    "p.o.r.n",
    "c u m",
    "r a p e",
    "n u d e s",
    "d i c k",
    "t i t s",
    "s l u t",
    "w h o r e",
    "k i l l yourself",
    "r.e.t.a.r.d",
    # digits and symbols for letters
    "n1gg3r",
    "n1gga",
    "ni99er",
    "ni99a",
    "f4gg0t",
    "f@ggot",
    "r3tard",
    "k1ll yourself",
    "k!ll yourself",
    "ki11 yourself",
    "k1ll y0urs3lf",
    "s3x",
    "s3xy",
    "p0rn",
    "pr0n hub",
    "p0rnhub",
    "nud3s",
    "h0rny",
    "b00bs",
    "t1ts",
    "d1ck pic",
    "c0ck",
    "pu$$y",
    "pu55y",
    "5lut",
    "wh0re",
    "r4pe",
    "r@pist",
    "m0lest",
    "p3do",
    "bl0wjob",
    "0nlyfans",
    "dr1nk bleach",
    "d!ck",
    "f*ggot",
    "n#gger",
    # repeated letters
    "niiiiggggerrrr",
    "niggaaaa",
    "faaaggot",
    "kyyyyys",
    "kysss",
    "seeeexy",
    "hoooorny",
    "pooorn",
    "nuuudes",
    "sluuuut",
    "kill yourselffff",
    "kiiiill yourself",
    # misspellings
    "nigah",
    "nibba",
    "fagget",
    "fagot",
    "secks",
    "peenis",
    "kil yourself",
    "kill yoself",
    # compounds
    "dickhead",
    "dickheads",
    "cockhead",
    "cumshot",
    "sandnigger",
    # split across spaces
    "fa ggot",
    "nig ger",
    "ni gg er",
    "ki ll yourself",
    "kill your self",
    "blow job",
    "por n",
    "s ex",
    "ra pe",
    "hor ny",
    # split across boxes
    "nig|ger",
    "fag|got",
    "kill|yourself",
    "kill your|self",
    "k|y|s",
    "ki|ll yourself",
    "send|nudes",
    "drink|bleach",
    "por|n hub",
    "so|sexy",
    "what a|slut",
    "go hang|yourself",
    # with accents and case
    "N\u00cdGGER",
    "S\u00c9XY",
    "P\u00d6RN",
    "KiLl YoUrSeLf",
]

# Pass at `standard` and `strict`: words that hold a listed one, words that meet when
# spacing is undone, contractions, numbers, and ordinary captions.
INNOCENT = [
    "scunthorpe",
    "scunthorpe united",
    "classic",
    "a classic movie",
    "assessment",
    "the assessment is due",
    "cocktail",
    "a cocktail party",
    "therapist",
    "my therapist says hi",
    "cockatoo",
    "peacock",
    "hancock",
    "shuttlecock",
    "dickens",
    "charles dickens",
    "dickson",
    "cumin",
    "cumulative",
    "cucumber",
    "document",
    "circumstances",
    "grape",
    "drape",
    "scrape",
    "grapefruit",
    "skyscraper",
    "sextant",
    "sussex",
    "essex",
    "middlesex",
    "sextet",
    "analysis",
    "analyst",
    "canal",
    "banal",
    "analog",
    "spicy",
    "spice girls",
    "despicable me",
    "niger river",
    "snigger",
    "pornography laws",
    "titanic",
    "titan",
    "title",
    "constitution",
    "petition",
    "appetite",
    "pedometer",
    "pedal",
    "encyclopedia",
    "torpedo",
    "nudge",
    "semantic",
    "semester",
    "basement",
    "penistone",
    "pennsylvania",
    "happiness",
    "sexton",
    "hoedown",
    "shoe",
    "shoehorn",
    "cocktails and dreams",
    "skills",
    "kills",
    "kill the lights",
    "this exam will kill me",
    "killing it",
    "you killed it",
    "go diego go",
    "pen is mightier than the sword",
    "the pen is mightier",
    "go ok",
    "an al capone movie",
    "an ai wrote this",
    "who're you",
    "he'll do it",
    "she'll be fine",
    "we'll see",
    "i'll be back",
    "he's ill",
    "wait till its quiet",
    "the earth is 4.55 billion years old",
    "i have $5",
    "class of 2019",
    "hello",
    "shell",
    "assassin",
    "massive",
    "passion",
    "bass guitar",
    "grass",
    "glasses",
    "embarrassed",
    "cockpit",
    "hitchcock",
    "bumper",
    "button",
    "buttons",
    "assume",
    "kyshawn",
    "skys the limit",
    "whose line is it",
    "whoreson welles",
    "slutsky",
    "raper street",
    "bigger",
    "trigger",
    "niggle",
    "faggio",
    "retardant",
    "flame retardant",
    "transmission fluid",
    "spick and span",
    "pakistan",
    "gooky",
    "y u no",
    "me: i will sleep early",
    "one does not simply walk into mordor",
    "when the wifi works",
]


@pytest.mark.parametrize("text", VARIANTS)
def test_variants_are_blocked(content_filter: ContentFilter, text: str) -> None:
    assert content_filter.check(text, "standard").blocked, text
    assert content_filter.check(text, "strict").blocked, text
    assert not content_filter.check(text, "off").blocked


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_words_pass(content_filter: ContentFilter, text: str) -> None:
    assert not content_filter.check(text, "standard").blocked, content_filter.check(
        text, "standard"
    )
    assert not content_filter.check(text, "strict").blocked, content_filter.check(text, "strict")


def test_the_tables_are_large_enough() -> None:
    assert len(set(VARIANTS)) >= 100 and len(set(INNOCENT)) >= 100


def test_strict_is_stricter(content_filter: ContentFilter) -> None:
    texts = VARIANTS + INNOCENT + [t for t, _, _ in BLOCKED] + PASSES_STRICT + STRICT_BLOCKS
    for text in texts:
        if content_filter.check(text, "standard").blocked:
            assert content_filter.check(text, "strict").blocked, text
    assert all(content_filter.check(t, "strict").blocked for t in STRICT_BLOCKS)


def test_off_holds_in_age_restricted_channels_only() -> None:
    assert level_in_channel("off", nsfw=True) == "off"
    assert level_in_channel("off", nsfw=False) == "standard"
    assert level_in_channel("strict", nsfw=False) == "strict"
    assert level_in_channel("standard", nsfw=True) == "standard"
    check_level_allowed("off", nsfw=True)
    check_level_allowed("strict", nsfw=False)
    with pytest.raises(FilterOffNeedsNsfw, match="age-restricted"):
        check_level_allowed("off", nsfw=False)


def test_curation_uses_the_same_filter() -> None:
    from retrain.corpus import content_filter as curation_filter

    check = curation_filter()
    assert all(check(t) for t in VARIANTS[:20])
    assert not any(check(t) for t in INNOCENT[:20])


@pytest.mark.slow
def test_the_bot_allows_off_from_age_restricted_channels_only(
    tiny_model: Path, tmp_path: Path
) -> None:
    nsfw_channel = 900020

    async def go() -> None:
        s = bot_settings(tmp_path)
        async with standin() as api, migrated_store(s.database_url) as store:
            api.channel_ids.append(nsfw_channel)
            api.nsfw_channel_ids.add(nsfw_channel)
            async with running_engine(tiny_model, s) as eng:
                s = s.model_copy(update={"engine_url": eng.url})
                async with running_bot(api, s, store):
                    off = {"content_filter": "off"}
                    refused = await api.answered(await api.invoke("settings", off, admin=True))
                    (reply,) = refused.replies
                    assert reply.ephemeral and "age-restricted" in reply.content
                    assert (await store.guild_settings(api.guild_id)).filter_level == "standard"

                    done = await api.answered(
                        await api.invoke("settings", off, admin=True, channel_id=nsfw_channel)
                    )
                    assert "`off` (in age-restricted channels; `standard` elsewhere)" in (
                        done.replies[0].content
                    )
                    assert (await store.guild_settings(api.guild_id)).filter_level == "off"

                    # A stored `off` acts as standard outside age-restricted channels.
                    rude = {"template": "two-buttons", "start_text": "send nudes"}
                    elsewhere = await api.answered(await api.invoke("meme", rude))
                    assert "content filter" in elsewhere.replies[-1].content
                    assert elsewhere.replies[-1].ephemeral
                    there = await api.answered(
                        await api.invoke("meme", rude, channel_id=nsfw_channel)
                    )
                    (msg,) = there.followups
                    assert msg.attachments and not msg.ephemeral
                    await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())
