"""The content filter on generated captions and on users' start text.

The model learned from raw Imgflip captions, so it writes slurs and sexual jokes like its
training data did. Each guild picks a level:

- ``off``: nothing is blocked.
- ``standard`` (the default): slurs, sexual content and self-harm incitement ("kill yourself",
  "kys"). Word and phrase lists only: the statistical profanity model below cannot tell these
  from ordinary swearing, which ``standard`` lets through.
- ``strict``: everything ``standard`` blocks, plus any profanity (a word list) and whatever
  alt-profanity-check, a maintained linear model over character n-grams, scores at or above
  ``STRICT_THRESHOLD``.

The lists catch what the library misses (measured: "kys", "drink bleach", "n1gger", "send
nudes", "blowjob", spaced-out "f u c k" all score below 0.3) and the library catches insults
that no short list holds. Matching runs on a normalised text: lower case, common digit and
symbol substitutions undone (``n1gg3r``), runs of single letters joined (``k y s``), and each
letter of a listed word allowed to repeat (``fuuuck``). Words match whole, with common
suffixes, so "class", "assassin", "therapist" and "cockatoo" pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from memebot.choices import FILTER_LEVELS, FilterLevel

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
)

# Words that contain a listed word plus an allowed suffix but are harmless.
ALLOWED = frozenset({"cumin", "hellas", "assy"})

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t"}
)
# Suffixes a listed word may carry; slurs take only the plural ("spic" must not catch "spicy").
_SUFFIX = r"(?:s|es|ed|er|ers|ing|in|y)?"
_PLURAL = r"s?"


def normalise(text: str) -> str:
    """Lower case, leetspeak undone, punctuation to spaces, spaced-out letters joined."""
    t = re.sub(r"(?<=\w)!(?=\w)", "i", text.lower()).translate(_LEET)  # "sh!t", not "no!"
    t = re.sub(r"[^a-z*]+", " ", t)  # "*" stays: it masks a vowel ("f*ck")
    # "k y s", "f u c k": three or more single letters in a row become one word.
    t = re.sub(r"\b(?:[a-z] ){2,}[a-z]\b", lambda m: m.group(0).replace(" ", ""), t)
    return " ".join(w for w in t.split() if w not in ALLOWED and w.strip("*"))


def _pattern(terms: Iterable[str], suffix: str = _SUFFIX) -> re.Pattern[str]:
    def one(term: str) -> str:
        words = [
            "".join((f"[{ch}*]" if ch in "aeiou" else re.escape(ch)) + "+" for ch in w)
            for w in term.split()
        ]  # each letter may repeat ("fuuuck"), a vowel may be masked ("f*ck")
        return r"\s+".join(words) + suffix

    alternation = "|".join(one(t) for t in sorted(set(terms), key=len, reverse=True))
    return re.compile(rf"(?<![a-z*])(?:{alternation})(?![a-z*])")


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

    @cached_property
    def _model(self) -> Any:
        from profanity_check import predict_prob  # scikit-learn: ~0.3 s to load, once

        return predict_prob

    def warm(self) -> None:
        """Loads the profanity model now (blocking, ~2 s: call it in a thread at start-up)."""
        if self.use_model:
            self._model  # noqa: B018 (the cached_property loads on access)

    def check(self, text: str, level: FilterLevel | str) -> Verdict:
        return self.check_many([text], level)[0]

    def check_many(self, texts: Sequence[str], level: FilterLevel | str) -> list[Verdict]:
        if level not in FILTER_LEVELS:
            raise ValueError(f"filter level {level!r}: choose one of {', '.join(FILTER_LEVELS)}")
        if level == "off":
            return [PASS for _ in texts]
        out: list[Verdict] = []
        for text in texts:
            norm = normalise(text)
            verdict = PASS
            checks = list(self._standard)
            if level == "strict":
                checks.append(("profanity", self._profanity))
            for category, pattern in checks:
                m = pattern.search(norm)
                if m:
                    verdict = Verdict(True, category, m.group(0).strip())
                    break
            out.append(verdict)
        if level == "strict" and self.use_model:
            todo = [i for i, v in enumerate(out) if not v.blocked]
            if todo:
                probs = self._model([texts[i] for i in todo])
                for i, p in zip(todo, probs, strict=True):
                    if p >= self.strict_threshold:
                        out[i] = Verdict(True, "profanity-model", f"p={p:.2f}")
        return out


@cache
def shared_filter() -> ContentFilter:
    """The process's filter (its word patterns compiled once, the model loaded once)."""
    return ContentFilter()


def blocked(text: str, level: FilterLevel | str) -> bool:
    """Whether `text` may not be shown in a guild at filter `level`."""
    return shared_filter().check(text, level).blocked
