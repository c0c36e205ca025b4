"""Folding what people type into the model's alphabet, and the bot applying it to start text
and to captions people write themselves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.schema import MemeOptions
from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.engine import running_engine
from memebot.text import Unwritable, fold

FOLDS = [
    # ASCII stays as it is, case included
    ("when the wifi | works", "when the wifi | works"),
    ("", ""),
    ("Mixed CASE!?", "Mixed CASE!?"),
    # phone apostrophes and quotes
    ("don\u2019t", "don't"),
    ("\u2018quoted\u2019", "'quoted'"),
    ("\u201cdouble\u201d", '"double"'),
    ("\u201elow\u201c", '"low"'),
    ("\u00abguillemets\u00bb", '"guillemets"'),
    ("it\u02bcs", "it's"),
    ("rock \u00b4n\u00b4 roll", "rock 'n' roll"),
    # dashes, ellipsis, spaces
    ("wait \u2014 what", "wait - what"),
    ("1990\u20132000", "1990-2000"),
    ("minus \u22121", "minus -1"),
    ("well\u2026", "well..."),
    ("no\u00a0break", "no break"),
    ("narrow\u202fspace", "narrow space"),
    ("zero\u200bwidth", "zerowidth"),
    ("soft\u00adhyphen", "softhyphen"),
    ("tab\there", "tab here"),
    # accents and letters of other languages
    ("caf\u00e9", "cafe"),
    ("Cr\u00e8me Br\u00fbl\u00e9e", "Creme Brulee"),
    ("na\u00efve", "naive"),
    ("se\u00f1or", "senor"),
    ("\u00e7a va", "ca va"),
    ("stra\u00dfe", "strasse"),
    ("\u00e6ther", "aether"),
    ("\u00d8resund", "Oresund"),
    ("\u0142\u00f3d\u017a", "lodz"),
    ("\u0153uvre", "oeuvre"),
    ("\u00f0\u00feorn", "dthorn"),
    ("\u0131stanbul", "istanbul"),
    ("e\u0301", "e"),  # decomposed: a letter and its combining accent
    ("\ufb01ne", "fine"),  # the fi ligature
    ("\uff48\uff49", "hi"),  # fullwidth letters
    ("\u00bfqu\u00e9?", "?que?"),
    ("2\u00d72", "2x2"),
]

UNWRITABLE = [
    ("\U0001f600", "\U0001f600"),
    ("lol \U0001f602 ok", "\U0001f602"),
    ("\U0001f44d\u200d", "\U0001f44d"),
    ("\u2764\ufe0f", "\u2764"),
    ("\u732b", "\u732b"),  # CJK
    ("\u3053\u3093\u306b\u3061\u306f", "\u3053"),  # hiragana
    ("\u043f\u0440\u0438\u0432\u0435\u0442", "\u043f"),  # Cyrillic
    ("\u03b1\u03b2", "\u03b1"),  # Greek
    ("\u0645\u0631\u062d\u0628\u0627", "\u0645"),  # Arabic
    ("\u2603", "\u2603"),  # snowman
]


@pytest.mark.parametrize(("typed", "folded"), FOLDS)
def test_fold(typed: str, folded: str) -> None:
    assert fold(typed) == folded
    MemeOptions(start=folded.replace("|", " ")[:200])  # the engine's schema accepts it


@pytest.mark.parametrize(("typed", "char"), UNWRITABLE)
def test_unwritable_names_the_character(typed: str, char: str) -> None:
    with pytest.raises(Unwritable) as e:
        fold(typed)
    assert e.value.char == char
    assert f"'{char}' (U+{ord(char):04X})" in str(e.value)


def test_unwritable_message_is_readable() -> None:
    with pytest.raises(Unwritable, match=r"can't write '\U0001f600' \(U\+1F600\)"):
        fold("\U0001f600")


def test_the_schema_still_refuses_unfolded_text() -> None:
    """Clients fold; the engine keeps its printable-ASCII rule."""
    with pytest.raises(ValueError, match="printable ASCII"):
        MemeOptions(start="don\u2019t")


@pytest.mark.slow
def test_the_bot_folds_start_text_and_names_what_it_cannot_write(
    tiny_model: Path, tmp_path: Path
) -> None:
    async def go() -> None:
        s = bot_settings(tmp_path)
        async with standin() as api, migrated_store(s.database_url) as store:
            async with running_engine(tiny_model, s) as eng:
                s = s.model_copy(update={"engine_url": eng.url})
                async with running_bot(api, s, store):
                    typed = "don\u2019t \u2014 caf\u00e9"
                    options = {"template": "two-buttons", "start_text": typed}
                    rec = await api.answered(await api.invoke("meme", options))
                    (msg,) = rec.followups
                    assert msg.attachments and msg.content.startswith("> don't - cafe")
                    await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
                    gen = await store.generation_by_message(msg.id)
                    assert gen is not None and gen.options["start_text"] == "don't - cafe"

                    options = {"template": "two-buttons", "start_text": "when \U0001f600"}
                    refused = await api.answered(await api.invoke("meme", options))
                    (reply,) = refused.replies
                    assert reply.ephemeral and not reply.attachments
                    assert "can't write '\U0001f600' (U+1F600)" in reply.content
                    assert not refused.deferred, "refused before anything public was posted"
                    # A caption of one's own: folded the same way, and the same refusal.
                    options = {"template": "two-buttons", "text": "caf\u00e9 \u2026|\u732b"}
                    refused = await api.answered(await api.invoke("meme", options))
                    (reply,) = refused.replies
                    assert reply.ephemeral and not reply.attachments
                    assert "can't write '\u732b' (U+732B)" in reply.content
                    assert not refused.deferred, "refused before anything public was posted"
                    assert (await store.stats(api.guild_id)).generations == 1
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())
