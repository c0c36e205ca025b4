"""The content filter on generated captions and on users' start text.

The model learned from raw Imgflip captions, so it writes slurs and sexual jokes like its
training data did. Each guild picks a level:

- ``off``: nothing is blocked; a guild may choose it from an age-restricted (NSFW) channel
  only, and in every other channel it acts as ``standard`` (`level_in_channel`).
- ``standard`` (the default): slurs, sexual content and self-harm incitement ("kill yourself",
  "kys"). Word and phrase lists only: the statistical profanity model below cannot tell these
  from ordinary swearing, which ``standard`` lets through.
- ``strict``: everything ``standard`` blocks, plus any profanity (a word list) and whatever
  alt-profanity-check, a maintained linear model over character n-grams, scores at or above
  ``STRICT_THRESHOLD``.

The lists catch what the library misses (measured: "kys", "drink bleach", "n1gger", "send
nudes", "blowjob", spaced-out "f u c k" all score below 0.3) and the library catches insults
that no short list holds. Matching runs on a normalised text: lower case, accents stripped,
digit and symbol substitutions inside a word undone (``n1gg3r``, ``@$$``; a number stays a
number), punctuation and box ends (``|``) to spaces, contractions cut (``who're`` is not
"whore"), runs of single letters joined (``k y s``, ``n.i.g.g.e.r``), and each letter of a
listed word allowed to repeat (``fuuuck``). Fragments are put back together: two or three
neighbouring tokens become one word unless all of them are common words (``fa ggot``,
``ki ll yourself``, a word split across boxes join; "pen is" and "go ok" do not). Words match
whole, with common suffixes and compounds (``dickhead``), so "scunthorpe", "classic",
"assessment", "cocktail", "therapist" and "cockatoo" pass.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from memebot.choices import FILTER_LEVELS, FilterLevel
from memebot.errors import MemebotError

# alt-profanity-check flags ~10% of real captions at its usual 0.5 ("i love my mom" scores
# 0.54, "kill thanos" 0.95); at 0.98 it adds insults ("you are an idiot") and little else.
STRICT_THRESHOLD = 0.98

# Each entry is a word (suffixes s/es/ed/er/ers/ing/in allowed) or, with a space, a phrase.
SLURS = (
    "nigger",
    "nigga",
    "niggah",
    "niqqa",
    "nigguh",
    "negro",
    "faggot",
    "fag",
    "retard",
    "retarded",
    "tranny",
    "kike",
    "spic",
    "chink",
    "gook",
    "wetback",
    "beaner",
    "towelhead",
    "raghead",
    "paki",
    "dyke",
    "sandnigger",
    # misspellings that dodge a plain list
    "nigah",
    "niggur",
    "nibba",
    "fagget",
    "fagot",
    "faget",
    "retart",
    "tranni",
)
SEXUAL = (
    "porn",
    "porno",
    "pornhub",
    "hentai",
    "nude",
    "nudes",
    "naked pic",
    "dick pic",
    "blowjob",
    "handjob",
    "rimjob",
    "cum",
    "cumshot",
    "jizz",
    "semen",
    "dildo",
    "vibrator",
    "orgasm",
    "masturbate",
    "masturbating",
    "jerk off",
    "jerking off",
    "fap",
    "horny",
    "sex",
    "sexy",
    "penis",
    "dick",
    "cock",
    "vagina",
    "pussy",
    "boobs",
    "boob",
    "tits",
    "titties",
    "erection",
    "boner",
    "anal",
    "milf",
    "slut",
    "whore",
    "thot",
    "rape",
    "raped",
    "rapist",
    "molest",
    "pedo",
    "pedophile",
    "incest",
    "onlyfans",
    "secks",
    "pron",
    "seks",
    "peenis",
    "vajayjay",
    "nudez",
)
SELF_HARM = (
    "kys",
    "kill yourself",
    "killyourself",
    "kill urself",
    "kill ur self",
    "kill your self",
    "go kill yourself",
    "hang yourself",
    "neck yourself",
    "shoot yourself",
    "unalive yourself",
    "end your life",
    "end ur life",
    "go die",
    "just die",
    "you should die",
    "u should die",
    "drink bleach",
    "slit your wrists",
    "cut your wrists",
    "jump off a bridge",
    "kil yourself",
    "kil urself",
    "kill yoself",
    "kill yo self",
)
PROFANITY = (
    "fuck",
    "fucking",
    "fucker",
    "motherfucker",
    "fck",
    "fk",
    "shit",
    "bullshit",
    "shitty",
    "damn",
    "goddamn",
    "dammit",
    "hell",
    "ass",
    "asshole",
    "arse",
    "bitch",
    "bastard",
    "crap",
    "piss",
    "pissed",
    "prick",
    "twat",
    "wanker",
    "bollocks",
    "douche",
    "douchebag",
    "wtf",
    "stfu",
    "lmfao",
    "omfg",
    "bloody",
    "screw you",
    "suck my",
    "fuk",
    "fuq",
    "phuck",
    "fcuk",
    "sht",
    "biatch",
    "azz",
)

# Words that contain a listed word plus an allowed suffix but are harmless.
ALLOWED = frozenset({"cumin", "hellas", "assy"})

_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "@": "a",
        "5": "s",
        "$": "s",
        "7": "t",
        "9": "g",
        "8": "b",
        "#": "*",
        "%": "*",
    }
)
# Suffixes a listed word may carry; slurs take only the plural ("spic" must not catch "spicy").
_SUFFIX = r"(?:s|es|ed|er|ers|ing|in|y|head|heads|face|hole|holes|bag|wad|sucker|suckers)?"
_PLURAL = r"s?"
# A letter of a listed word may be written as another that looks like it once digits are
# undone ("ki11" is "kiii").
_LOOKALIKE = {"l": "li"}

# Common short words: tokens that are all words are never joined into one ("pen is", "go ok",
# "an al"), while a fragment that is not a word joins its neighbours ("fa ggot", "sh it",
# "ki ll yourself"). Meme spellings ("u", "y", "r") count as words.
_COMMON = (
    "a i u y r n an as at be by do go he if in is it me my no of oh ok on or so to up us "
    "we al am ha hi ho ya yo um uh eh ah the and but for you are was not his her its our "
    "who all can had has him how man new now old one see two way day get got did let say "
    "she too use yes pen horn chin tit boo bone con cock dam den ran rap ape pe ass sex "
    "tho hot cum cut off end die jump kill your self ur just kick pin dig gay home with "
    "this that what when ill its till ai"
)
WORDS = frozenset(_COMMON.split())
_WORDISH = re.compile(r"[a-z0-9@$*#%]+")
_NUMBER = re.compile(r"[0-9]+")
_JOIN_MAX = 3  # tokens joined at most ("ni gg er")
_PHRASE_WORDS = 5  # the longest listed phrase, in words: the context a joined token is seen in
# Contractions are cut off, not split: "who're", "he'll" and "she'll" must not become "whore",
# "hell" or "shell", nor leave a fragment that joins its neighbour.
_CONTRACTION = re.compile(r"(?<=[a-z])['`](?:s|t|d|m|ll|re|ve)\b")


def normalise(text: str) -> str:
    """Lower case, accents and leetspeak undone, punctuation (box ends `|` included) to spaces,
    spaced-out letters joined."""
    t = unicodedata.normalize("NFKD", text.lower())
    t = "".join(c for c in t if not unicodedata.combining(c))
    t = _CONTRACTION.sub("", t)
    t = re.sub(r"(?<=\w)!(?=\w)", "i", t)  # "sh!t", not "no!"
    # Digits and symbols stand for letters inside a word ("n1gg3r", "a55", "@$$"); a number
    # ("4.55 billion") stays a number, and numbers are not words.
    t = _WORDISH.sub(lambda m: " " if _NUMBER.fullmatch(m[0]) else m[0].translate(_LEET), t)
    t = re.sub(r"[^a-z*]+", " ", t)  # "*" stays: it masks a vowel ("f*ck")
    # "k y s", "f u c k": three or more single letters in a row become one word.
    t = re.sub(r"\b(?:[a-z] ){2,}[a-z]\b", lambda m: m.group(0).replace(" ", ""), t)
    return " ".join(w for w in t.split() if w not in ALLOWED and w.strip("*"))


def joined_variants(norm: str) -> list[str]:
    """`norm` with fragments put back together: each run of 2 to _JOIN_MAX neighbouring tokens
    not all of them common words ("fa ggot", "ki ll yourself", a word split across boxes)
    becomes one token, seen with the words around it."""
    tokens = norm.split()
    out = []
    for i in range(len(tokens)):
        for j in range(i + 2, min(i + _JOIN_MAX, len(tokens)) + 1):
            if all(t in WORDS for t in tokens[i:j]):
                continue
            before = tokens[max(0, i - _PHRASE_WORDS + 1) : i]
            after = tokens[j : j + _PHRASE_WORDS - 1]
            out.append(" ".join([*before, "".join(tokens[i:j]), *after]))
    return out


def _letter(ch: str) -> str:
    # One look-alike per slot, repeated ("kiii"), never mixed: "tillits" is not "tits".
    alts = [re.escape(c) + "+" for c in _LOOKALIKE.get(ch, ch)]
    if ch in "aeiou":
        alts = [f"[{ch}*]+", *alts[1:]]
    return alts[0] if len(alts) == 1 else f"(?:{'|'.join(alts)})"


def _pattern(terms: Iterable[str], suffix: str = _SUFFIX) -> re.Pattern[str]:
    def one(term: str) -> str:
        # each letter may repeat ("fuuuck"), a vowel may be masked ("f*ck")
        words = ["".join(_letter(ch) for ch in w) for w in term.split()]
        return r"\s+".join(words) + suffix

    alternation = "|".join(one(t) for t in sorted(set(terms), key=len, reverse=True))
    # Whole words only: "scunthorpe", "classic" and "cocktail" hold a listed word but are not one.
    return re.compile(rf"(?<![a-z*])(?:{alternation})(?![a-z*])")


def _any_of(patterns: Iterable[re.Pattern[str]]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns))


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    category: str | None = None  # slur | sexual | self-harm | profanity | profanity-model
    match: str | None = None  # what matched, for logs (never shown to the channel)


PASS = Verdict(False)


class ContentFilter:
    """Checks texts at a guild's level. The profanity model loads on first strict use."""

    def __init__(self, *, strict_threshold: float = STRICT_THRESHOLD, use_model: bool = True):
        self.strict_threshold = strict_threshold
        self.use_model = use_model
        self._standard = [
            ("slur", _pattern(SLURS, _PLURAL)),
            ("sexual", _pattern(SEXUAL)),
            ("self-harm", _pattern(SELF_HARM)),
        ]
        self._profanity = _pattern(PROFANITY)
        self._any = {
            "standard": _any_of(p for _, p in self._standard),
            "strict": _any_of([*(p for _, p in self._standard), self._profanity]),
        }

    @cached_property
    def _model(self) -> Any:
        from profanity_check import predict_prob  # scikit-learn: ~0.3 s to load, once

        return predict_prob

    def warm(self) -> None:
        """Loads the profanity model now (blocking, ~2 s: call it in a thread at start-up)."""
        if self.use_model:
            self._model  # noqa: B018 (the cached_property loads on access)

    @staticmethod
    def _lists(
        norm: str, checks: Sequence[tuple[str, re.Pattern[str]]], any_of: re.Pattern[str]
    ) -> Verdict:
        """The first listed word in `norm`, as written or put back together from fragments.
        `any_of` (all of `checks` in one pattern) finds whether one is there: one search per
        variant, and the category named only on a hit."""
        for text in (norm, *joined_variants(norm)):
            if any_of.search(text):
                for category, pattern in checks:
                    m = pattern.search(text)
                    if m:
                        return Verdict(True, category, m.group(0).strip())
        return PASS

    def check(self, text: str, level: FilterLevel | str) -> Verdict:
        return self.check_many([text], level)[0]

    def check_many(self, texts: Sequence[str], level: FilterLevel | str) -> list[Verdict]:
        if level not in FILTER_LEVELS:
            raise ValueError(f"filter level {level!r}: choose one of {', '.join(FILTER_LEVELS)}")
        if level == "off":
            return [PASS for _ in texts]
        checks = list(self._standard)
        if level == "strict":
            checks.append(("profanity", self._profanity))
        out = [self._lists(normalise(text), checks, self._any[level]) for text in texts]
        if level == "strict" and self.use_model:
            todo = [i for i, v in enumerate(out) if not v.blocked]
            if todo:
                probs = self._model([texts[i] for i in todo])
                for i, p in zip(todo, probs, strict=True):
                    if p >= self.strict_threshold:
                        out[i] = Verdict(True, "profanity-model", f"p={p:.2f}")
        return out


class FilterOffNeedsNsfw(MemebotError):
    """`off` asked for outside an age-restricted channel."""

    def __init__(self) -> None:
        super().__init__(
            "The content filter can be turned off only from an age-restricted (NSFW) channel, "
            "and stays on in every other channel; choose standard or strict here."
        )


def level_in_channel(level: FilterLevel, *, nsfw: bool) -> FilterLevel:
    """The level a channel gets: a guild's `off` holds in age-restricted channels only; in any
    other it acts as `standard`."""
    return "standard" if level == "off" and not nsfw else level


def check_level_allowed(level: FilterLevel, *, nsfw: bool) -> None:
    """FilterOffNeedsNsfw when `level` is `off` and the channel is not age-restricted."""
    if level == "off" and not nsfw:
        raise FilterOffNeedsNsfw()


@cache
def shared_filter() -> ContentFilter:
    """The process's filter (its word patterns compiled once, the model loaded once)."""
    return ContentFilter()


def blocked(text: str, level: FilterLevel | str) -> bool:
    """Whether `text` may not be shown in a guild at filter `level`."""
    return shared_filter().check(text, level).blocked
