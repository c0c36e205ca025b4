"""The per-guild content filter on generated captions and on users' start text.

Levels:
- `off`: nothing is blocked.
- `standard` (the default): slurs, sexual content and self-harm incitement ("kill yourself"),
  from word lists: the training captions are raw Imgflip user content and the model does write
  these. Plain swearing ("shit happens") passes.
- `strict`: everything `standard` blocks plus any profanity: alt-profanity-check's model
  (a linear SVM over words, probability >= 0.5) and a swear-word list for what it misses.

Matching is on normalised words (lowercase, leetspeak folded, repeated letters squeezed), so
"k1ll yourselfff" and "N1GG4" are caught; stems match word starts ("fag" in "faggots").
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

Level = Literal["off", "standard", "strict"]
LEVELS: tuple[Level, ...] = ("off", "standard", "strict")
STRICT_THRESHOLD = 0.5

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)

# Word starts: a caption word beginning with one of these is a hit ("fag" catches "faggot").
SLURS = (
    "nigger", "nigga", "niger", "nigg", "negro", "faggot", "fag", "dyke", "tranny", "shemale",
    "retard", "spic", "spick", "chink", "gook", "kike", "wetback", "beaner", "coon", "raghead",
    "towelhead", "sandnigger", "paki", "gypsies", "jigaboo", "porchmonkey", "zipperhead",
)  # fmt: skip
SEXUAL = (
    "porn", "p0rn", "pussy", "pussies", "dick", "cock", "penis", "vagina", "cum", "cumming",
    "cumshot", "blowjob", "handjob", "rimjob", "boob", "tits", "titties", "titty", "nude",
    "nudes", "naked", "sex", "sexy", "horny", "orgasm", "masturbat", "jerk off", "jerking off",
    "fap", "dildo", "anal", "rape", "raping", "rapist", "molest", "pedo", "pedophile", "hentai",
    "milf", "incest", "nsfw", "erection", "boner", "jizz", "slut", "whore", "hooker", "thot",
    "deepthroat", "bdsm", "creampie", "gangbang", "threesome", "stripper", "onlyfans",
)  # fmt: skip
# Whole phrases (after normalisation); self-harm incitement and its common spellings.
SELF_HARM = (
    "kill yourself", "kill urself", "kill ur self", "kys", "go die", "hang yourself",
    "neck yourself", "slit your wrists", "cut yourself", "end yourself", "unalive yourself",
    "drink bleach", "jump off a bridge", "you should die", "nobody would miss you",
)  # fmt: skip
# Swearing that `standard` lets through but `strict` blocks (with the model's score).
PROFANITY = (
    "fuck", "shit", "bitch", "bastard", "asshole", "ass", "damn", "crap", "piss", "bollocks",
    "bullshit", "motherfuck", "wtf", "stfu", "dumbass", "jackass", "douche", "twat", "wanker",
    "prick", "cunt", "hell", "goddamn", "screw you", "sucks",
)  # fmt: skip
# Stems that would wrongly match ordinary words as a prefix: matched as whole words only.
_WHOLE_ONLY = frozenset(
    {"ass", "cum", "dick", "hell", "fag", "coon", "spic", "paki", "anal", "nude", "sex", "fap",
     "thot", "crap", "damn", "prick", "niger", "negro", "gook", "kys", "tits", "boob", "cock"}
)  # fmt: skip


def normalise(text: str) -> str:
    t = text.lower().translate(_LEET)
    t = re.sub(r"[^a-z\s']", " ", t).replace("'", "")
    t = re.sub(r"(.)\1{2,}", r"\1\1", t)  # "yourselfff" -> "yourselff"
    return " ".join(t.split())


def _squeeze(text: str) -> str:
    return re.sub(r"(.)\1", r"\1", text)


def _words(text: str) -> list[str]:
    # Also each word with doubled letters squeezed: "selff" -> "self", "niggger" -> "niger".
    words = text.split()
    return words + [_squeeze(w) for w in words]


def _hits(norm: str, stems: tuple[str, ...]) -> bool:
    words = _words(norm)
    padded = f" {norm} "
    squeezed = " " + _squeeze(norm) + " "
    for stem in stems:
        if " " in stem:
            if f" {stem} " in padded or " " + _squeeze(stem) + " " in squeezed:
                return True
        elif stem in _WHOLE_ONLY:
            if stem in words or stem + "s" in words:
                return True
        elif any(w.startswith(stem) for w in words):
            return True
    return False


def standard_hit(text: str) -> bool:
    norm = normalise(text)
    return _hits(norm, SLURS) or _hits(norm, SEXUAL) or _hits(norm, SELF_HARM)


@lru_cache(maxsize=1)
def _model() -> object:
    from profanity_check import predict_prob  # loads scikit-learn: ~1 s, once

    return predict_prob


def profanity_score(text: str) -> float:
    predict_prob = _model()
    return float(predict_prob([text])[0])  # type: ignore[operator]


def blocked(text: str, level: Level | str) -> bool:
    """Whether `text` may not be shown in a guild at filter `level`."""
    if level == "off" or not text.strip():
        return False
    if standard_hit(text):
        return True
    if level == "strict":
        return _hits(normalise(text), PROFANITY) or profanity_score(text) >= STRICT_THRESHOLD
    return False


def warm_up() -> None:
    """Load the profanity model now (called off the event loop at bot start)."""
    profanity_score("warm up")
