"""Templates the model saw no captions of: their name as the opening of a box, sometimes.

A template without captions is decoded with the model's generic slot, which writes a caption
that could go on any template. Yet many template names are what people write on them: "y u
no", "that would be great", "one does not simply" open a box of a large share of their
captions. So for a template with no slot of its own whose name reads as a phrase
(`name_phrase`), a row opens its first box with the name with probability NAME_OPENS_FIRST and
its last box with NAME_OPENS_LAST (the engine's RowTable forces those characters, then samples
on). The two shares are estimated from the templates that have captions: over those whose
names pass `name_phrase`, the mean share of their captions whose first (last) box opens with
the name (bench/unseen_templates.py prints the estimate; docs/ENGINE.md, "Templates with no
captions").

Only rows of a request without start text, for a template the table holds with the generic
slot, are seeded (an upload, whose slug no table holds, is not). Beam search is left alone.
"""

from __future__ import annotations

import re

from memebot.artifact.templates import GENERIC_SLOT, TemplateEntry

# Shares of captions opening their first / last box with the template's name, the mean over
# the templates with captions whose names are phrases (bench/unseen_templates.py
# --estimate --exclude y-u-no,that-would-be-great: 22 templates of the shared data).
NAME_OPENS_FIRST = 0.091
NAME_OPENS_LAST = 0.037
# A name is a phrase someone would write when it has at least two words and one of these:
# pronouns and auxiliaries, which a descriptive name ("Grumpy Cat", "Distracted Boyfriend")
# lacks.
_PHRASE_WORDS = frozenset(
    {
        *("i", "you", "u", "me", "my", "we", "our", "that", "thats", "it", "its", "is"),
        *("are", "am", "be", "not", "no", "would", "will", "does", "do", "did", "dont"),
        *("just", "got", "your"),
    }
)
_NON_WORD = re.compile(r"[^a-z0-9' ]+")


def name_phrase(entry: TemplateEntry | None) -> str | None:
    """The entry's name as caption text when the entry has no slot of its own and its name
    reads as a phrase (`phrase_of`); else None."""
    if entry is None or entry.slot != GENERIC_SLOT:
        return None
    return phrase_of(entry.name)


def phrase_of(name: str) -> str | None:
    """`name` as caption text (lowercase, the corpus's characters) if it reads as a phrase
    someone would write (two words or more, one of them in _PHRASE_WORDS), else None."""
    text = " ".join(_NON_WORD.sub(" ", name.lower()).split())
    words = text.replace("'", "").split()
    if len(words) < 2 or not _PHRASE_WORDS & set(words):
        return None
    return text


def seeded_box(u: float, n_boxes: int) -> int:
    """Which box a row opens with the name, from its uniform draw `u`: 0, the last, or -1."""
    if u < NAME_OPENS_FIRST:
        return 0
    if n_boxes > 1 and u < NAME_OPENS_FIRST + NAME_OPENS_LAST:
        return n_boxes - 1
    return -1
