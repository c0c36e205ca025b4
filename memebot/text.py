"""What people type, folded into the model's alphabet (printable ASCII).

Phones write typographic punctuation (`don’t`, “quotes”, … and en/em dashes), and people write
accented letters; the engine's API accepts printable ASCII only, since that is what the model
was trained on. `fold` maps the first to their ASCII forms and strips accents (NFKD, combining
marks dropped; letters NFKD leaves whole, such as ß, æ, ø and ł, from a table), so `Café`
becomes `Cafe`. What has no written form in that alphabet (emoji, CJK, most symbols) raises
`Unwritable`, naming the character, so the user can be told which one to change.
"""

from __future__ import annotations

import unicodedata

from memebot.errors import MemebotError

# Punctuation and spaces as phones and word processors write them. Every entry is what a
# reader sees; NFKD alone would keep most of these (they are not compatibility characters).
_PUNCTUATION = {
    "\u2018": "'",  # ‘ left single quotation mark
    "\u2019": "'",  # ’ right single quotation mark (the phone apostrophe)
    "\u201a": "'",  # ‚ single low-9 quotation mark
    "\u201b": "'",  # ‛ single high-reversed-9 quotation mark
    "\u2032": "'",  # ′ prime
    "\u02bc": "'",  # ʼ modifier letter apostrophe
    "\u00b4": "'",  # ´ acute accent, typed as an apostrophe
    "`": "'",
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u201f": '"',  # ‟
    "\u2033": '"',  # ″ double prime
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    "\u2039": "'",  # ‹
    "\u203a": "'",  # ›
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # ‑ non-breaking hyphen
    "\u2012": "-",  # ‒ figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign
    "\u2026": "...",  # … ellipsis
    "\u00a0": " ",  # no-break space
    "\u2007": " ",  # figure space
    "\u202f": " ",  # narrow no-break space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u3000": " ",  # ideographic space
    "\t": " ",
    "\n": " ",
    "\r": "",
    "\u200b": "",  # zero-width space
    "\u200c": "",  # zero-width non-joiner
    "\u200d": "",  # zero-width joiner (inside emoji sequences: the emoji itself is refused)
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte order mark / zero-width no-break space
    "\ufe0f": "",  # variation selector-16 (emoji presentation)
    "\u00ad": "",  # soft hyphen
    "\u00d7": "x",  # ×
    "\u2022": "*",  # •
    "\u00b7": ".",  # ·
    "\u00a1": "!",  # ¡
    "\u00bf": "?",  # ¿
    "\u20ac": "EUR",  # €
    "\u00a3": "GBP",  # £
}
# Letters NFKD does not decompose: their usual transliteration.
_LETTERS = {
    "ß": "ss",
    "ẞ": "SS",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ø": "o",
    "Ø": "O",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "Th",
    "ı": "i",
    "ħ": "h",
    "Ħ": "H",
    "ŀ": "l",
    "Ŀ": "L",
    "ŋ": "ng",
    "Ŋ": "NG",
    "ſ": "s",
}
_TABLE = str.maketrans(_PUNCTUATION | _LETTERS)


class Unwritable(MemebotError):
    """Text holds a character the model's alphabet cannot write, even folded."""

    def __init__(self, char: str):
        self.char = char
        super().__init__(
            f"I can't write '{char}' (U+{ord(char):04X}); "
            "captions use Latin letters, digits and ordinary punctuation."
        )


def _printable(c: str) -> bool:
    return 32 <= ord(c) < 127


def fold(text: str) -> str:
    """`text` in printable ASCII: typographic punctuation to its ASCII form, accents stripped;
    Unwritable names the first character that has no such form."""
    if all(_printable(c) for c in text):
        return text  # the common case: nothing to do
    out: list[str] = []
    for c in text.translate(_TABLE):
        if _printable(c):
            out.append(c)
            continue
        # NFKD splits "é" into "e" and a combining accent, "ﬁ" into "fi", "①" into "1".
        decomposed = "".join(
            d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d)
        ).translate(_TABLE)
        if not decomposed:
            continue  # a lone combining mark: the accent of a letter already written
        if not all(_printable(d) for d in decomposed):
            raise Unwritable(c)
        out.append(decomposed)
    return "".join(out)
