"""Taste curation: one server's rated memes -> labelled rows for fitting that server's taste,
and held-out rows for its gate.

A taste is fitted from its own server's votes only (Store.guild_rated_memes), which already
leaves out the votes of users who asked /forget-me and the memes it deleted. Pure functions
over plain data, so each rule is testable on its own.

Rules, in order (a meme is counted under the first one it fails):
  own_vote_only  no vote left once the requester's own vote on their own meme is taken out
                 (a requester liking their own meme says nothing about the server's taste)
  tie            the remaining votes cancel out (net 0): no label
  filtered       the content filter flags the caption (the bot's `standard` level)
  duplicate      the same template and caption as a meme kept already (the one with the
                 larger net vote stays): one caption on both sides of the split would leak
Every other meme counts, however few its votes: label liked (+1) or disliked (-1) by the sign
of its net vote, weight |net| capped at `weight_cap`. A single vote and a one-sided vote count;
real servers give mostly those. A hash of the meme id salted with the server id sends
`heldout_share` of the memes to the gate's held-out set (never fitted on), the same memes in
every run of that server, and other servers' splits independent of it; a label the hash put
wholly on one side lends one meme to the other (_both_sides), so a server at the minimums
can be fitted and judged.

Too few memes for a taste (below `min_rated`, `min_liked`, `min_disliked`, or a split with no
liked or no disliked meme) is NotEnoughVotes, which says how many more are needed; nothing runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from memebot import filtering
from memebot.caption_format import CaptionRow
from memebot.choices import FilterLevel
from memebot.errors import UsageError
from memebot.store import Store
from memebot.store.types import RatedMeme

RULES = ("own_vote_only", "tie", "filtered", "duplicate")
CURATION_FILTER: FilterLevel = "standard"  # as the base curation


@dataclass(frozen=True)
class TasteRules:
    min_rated: int = 20  # memes that count, after the rules
    min_liked: int = 3
    min_disliked: int = 3
    heldout_share: float = 0.25  # of memes, for the gate only
    weight_cap: int = 3  # a meme's weight is |net vote|, capped


@dataclass(frozen=True)
class TasteRow(CaptionRow):
    generation_id: int
    template: str
    boxes: tuple[str, ...]
    label: int  # +1 liked, -1 disliked
    weight: int
    up: int  # counted votes (the requester's own left out)
    down: int
    split: str  # train | heldout


@dataclass
class TasteCurated:
    guild_id: int
    train: list[TasteRow] = field(default_factory=list)
    heldout: list[TasteRow] = field(default_factory=list)
    rated: int = 0  # memes with at least one vote, before the rules
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))

    @property
    def rows(self) -> list[TasteRow]:
        return [*self.train, *self.heldout]

    @property
    def liked(self) -> int:
        return sum(1 for r in self.rows if r.label > 0)

    @property
    def disliked(self) -> int:
        return sum(1 for r in self.rows if r.label < 0)

    @property
    def n_votes(self) -> int:
        """The votes the taste is fitted and judged on (recorded with its version)."""
        return sum(r.up + r.down for r in self.rows)

    def counts(self) -> dict[str, int]:
        return {
            "rated": self.rated,
            "kept": len(self.rows),
            "liked": self.liked,
            "disliked": self.disliked,
            "votes": self.n_votes,
            "train": len(self.train),
            "heldout": len(self.heldout),
            **{f"dropped_{k}": v for k, v in self.dropped.items()},
        }


class NotEnoughVotes(UsageError):
    """Too few of a server's memes count for a taste; the message says how many more."""

    def __init__(self, message: str, *, more_rated: int, more_liked: int, more_disliked: int):
        super().__init__(message)
        self.more_rated = more_rated
        self.more_liked = more_liked
        self.more_disliked = more_disliked


def heldout_rank(guild_id: int, generation_id: int) -> float:
    """The meme's place in [0, 1) for the split: stable across runs and machines, salted per
    server, so which memes one server's gate holds out says nothing about another's."""
    key = f"taste-heldout\t{guild_id}\t{generation_id}".encode()
    return (int.from_bytes(hashlib.sha1(key).digest()[:8], "big") % 10_000) / 10_000


def is_heldout(guild_id: int, generation_id: int, share: float) -> bool:
    return heldout_rank(guild_id, generation_id) < share


def counted_votes(meme: RatedMeme) -> dict[int, int]:
    """The meme's votes without its requester's own."""
    own = meme.generation.user_id
    return {u: v for u, v in meme.votes.items() if u != own}


async def curate_guild(
    store: Store, guild_id: int, *, rules: TasteRules = TasteRules()
) -> TasteCurated:
    """The server's rated memes from the store, curated with the bot's `standard` content
    filter: what a taste run fits on, and what /retrain checks first (NotEnoughVotes: nothing
    is queued)."""
    memes = await store.guild_rated_memes(guild_id)
    return curate_taste(
        guild_id, memes, rules=rules, blocked=lambda text: filtering.blocked(text, CURATION_FILTER)
    )


def curate_taste(
    guild_id: int,
    memes: Iterable[RatedMeme],
    *,
    rules: TasteRules = TasteRules(),
    blocked: Callable[[str], bool] = lambda _text: False,
) -> TasteCurated:
    """Applies the rules (module docstring) to one server's rated memes; NotEnoughVotes when
    too few count. `blocked(text)` is the content filter."""
    out = taste_rows(guild_id, memes, rules=rules, blocked=blocked)
    check_enough(out, rules)
    return out


def taste_rows(
    guild_id: int,
    memes: Iterable[RatedMeme],
    *,
    rules: TasteRules = TasteRules(),
    blocked: Callable[[str], bool] = lambda _text: False,
) -> TasteCurated:
    """The rules without the minimums: what each meme becomes (curate_taste checks those)."""
    out = TasteCurated(guild_id=guild_id)
    best: dict[tuple[str, str], TasteRow] = {}
    for meme in memes:
        g = meme.generation
        if g.guild_id != guild_id:
            # A caller's mistake, not a rule: another server's votes never shape this taste.
            raise ValueError(f"meme {g.id} is guild {g.guild_id}'s, not {guild_id}'s")
        if not meme.votes or g.deleted_at is not None:  # a deleted meme teaches nothing
            continue
        out.rated += 1
        votes = counted_votes(meme)
        if not votes:
            out.dropped["own_vote_only"] += 1
            continue
        up = sum(1 for v in votes.values() if v > 0)
        down = len(votes) - up
        net = up - down
        if net == 0:
            out.dropped["tie"] += 1
            continue
        if blocked(" ".join(g.boxes)):
            out.dropped["filtered"] += 1
            continue
        split = "heldout" if is_heldout(guild_id, g.id, rules.heldout_share) else "train"
        row = TasteRow(
            generation_id=g.id,
            template=g.template,
            boxes=tuple(g.boxes),
            label=1 if net > 0 else -1,
            weight=min(abs(net), rules.weight_cap),
            up=up,
            down=down,
            split=split,
        )
        key = (row.template, row.text)
        kept = best.get(key)
        if kept is not None:
            out.dropped["duplicate"] += 1
            if abs(row.up - row.down) <= abs(kept.up - kept.down):
                continue
        best[key] = row
    for r in sorted(_both_sides(guild_id, list(best.values())), key=lambda r: r.generation_id):
        (out.train if r.split == "train" else out.heldout).append(r)
    return out


def _both_sides(guild_id: int, rows: list[TasteRow]) -> list[TasteRow]:
    """Each label on both sides of the split when it has two memes or more: a class the hash
    put wholly on one side gives its lowest-ranked meme to the held-out set (or its
    highest-ranked to training). With 3 liked memes and a quarter held out, the hash alone
    holds none of them out 42% of the time. A meme moved so can move back once its label has
    more memes; then the taste it trained is scored on it, which favours keeping that taste."""
    out = list(rows)
    for label in (1, -1):
        idx = sorted(
            (i for i, r in enumerate(out) if r.label == label),
            key=lambda i: heldout_rank(guild_id, out[i].generation_id),
        )
        if len(idx) < 2:
            continue
        if all(out[i].split == "train" for i in idx):
            out[idx[0]] = replace(out[idx[0]], split="heldout")
        elif all(out[i].split == "heldout" for i in idx):
            out[idx[-1]] = replace(out[idx[-1]], split="train")
    return out


def check_enough(curated: TasteCurated, rules: TasteRules) -> None:
    """NotEnoughVotes unless the kept memes meet the minimums and both splits have a liked and
    a disliked meme (a taste learns nothing from one side, and the gate cannot rank one)."""
    kept, liked, disliked = len(curated.rows), curated.liked, curated.disliked
    more_rated = max(0, rules.min_rated - kept)
    more_liked = max(0, rules.min_liked - liked)
    more_disliked = max(0, rules.min_disliked - disliked)
    have = (
        f"{kept} rated meme{' counts' if kept == 1 else 's count'} for this server's taste"
        f" ({liked} liked, {disliked} disliked)"
    )
    if more_rated or more_liked or more_disliked:
        wants = [f"{more_rated} more rated meme{'s' if more_rated != 1 else ''}"] * bool(more_rated)
        wants += [f"{more_liked} more liked"] * bool(more_liked)
        wants += [f"{more_disliked} more disliked"] * bool(more_disliked)
        raise NotEnoughVotes(
            f"{have}; a taste needs at least {rules.min_rated}, with {rules.min_liked} liked"
            f" and {rules.min_disliked} disliked: {', '.join(wants)} needed",
            more_rated=more_rated,
            more_liked=more_liked,
            more_disliked=more_disliked,
        )
    for name, rows in (("training", curated.train), ("held-out", curated.heldout)):
        missing = [
            side
            for side, sign in (("liked", 1), ("disliked", -1))
            if not any(r.label == sign for r in rows)
        ]
        if missing:
            raise NotEnoughVotes(
                f"{have}, but the {name} part has no {' or '.join(missing)} meme yet:"
                " rate a few more memes",
                more_rated=1,
                more_liked=int("liked" in missing),
                more_disliked=int("disliked" in missing),
            )
