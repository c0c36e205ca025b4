"""Templates without captions opening a box with their name (engine/decoding/unseen.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.decoding.batch import run_jobs
from engine.decoding.jobs import CaptionRequest, make_job
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from engine.decoding.unseen import NAME_OPENS_FIRST, NAME_OPENS_LAST, name_phrase, seeded_box
from harness.factories import captions_alone
from memebot.artifact.templates import GENERIC_SLOT, TemplateEntry, TemplateTable

PHRASE = "one does not simply"


def entry(name: str, slot: int = GENERIC_SLOT, slug: str = "one-does-not-simply") -> TemplateEntry:
    return TemplateEntry(slug, name, None, (), 2, slot, 0 if slot == GENERIC_SLOT else 50)


@pytest.mark.parametrize(
    ("name", "slot", "want"),
    [
        ("One Does Not Simply", GENERIC_SLOT, PHRASE),
        ("But That's None Of My Business", GENERIC_SLOT, "but that's none of my business"),
        ("Y U No", GENERIC_SLOT, "y u no"),
        ("Distracted Boyfriend", GENERIC_SLOT, None),  # a description, not something said
        ("Doge", GENERIC_SLOT, None),  # one word
        ("One Does Not Simply", 3, None),  # the model has its own slot: no seed
    ],
)
def test_name_phrase(name: str, slot: int, want: str | None) -> None:
    assert name_phrase(entry(name, slot)) == want


def test_name_phrase_of_no_entry() -> None:
    assert name_phrase(None) is None


def test_seeded_box_shares() -> None:
    assert seeded_box(0.0, 2) == 0
    assert seeded_box(NAME_OPENS_FIRST + NAME_OPENS_LAST / 2, 2) == 1
    assert seeded_box(NAME_OPENS_FIRST + NAME_OPENS_LAST / 2, 3) == 2
    assert seeded_box(NAME_OPENS_FIRST + NAME_OPENS_LAST / 2, 1) == -1  # one box: first only
    assert seeded_box(0.99, 2) == -1


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> LoadedModel:
    """The tiny model with one more template it has no slot for, named by a phrase."""
    m = load_model(tiny_model)
    table = TemplateTable([*m.templates.entries, entry("One Does Not Simply")])
    return dataclasses.replace(m, templates=table)


def _captions(model: LoadedModel, seeds: range, **kw: object) -> list[list[str]]:
    jobs = [
        make_job(model, CaptionRequest("one-does-not-simply", 2, seed=s, **kw))  # type: ignore[arg-type]
        for s in seeds
    ]
    run_jobs(model, jobs)
    return [j.captions()[0].boxes for j in jobs]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["natural", "calibrated", "top-p"])
def test_some_rows_open_a_box_with_the_name(model: LoadedModel, method: str) -> None:
    """Over 400 seeds, the first and the last box each open with the name in some captions,
    about as often as the shares say (binomial: about 36 and 15 expected), the rest of the caption
    sampled on; without the seed the tiny model never writes the name."""
    seeds = range(400)
    caps = _captions(model, seeds, decoding=Decoding(method))
    first = sum(c[0].startswith(PHRASE) for c in caps)
    last = sum(c[1].startswith(PHRASE) for c in caps)
    assert 15 <= first <= 60, first
    assert 3 <= last <= 30, last
    assert all(len(c) == 2 and all(c) for c in caps)  # the caption rules still hold
    assert any(c[0].startswith(PHRASE) and len(c[0]) > len(PHRASE) for c in caps) or any(
        c[1].startswith(PHRASE) and len(c[1]) > len(PHRASE) for c in caps
    )
    plain = _captions(model, seeds, decoding=Decoding(method), name_seed=False)
    assert not any(PHRASE in " ".join(c) for c in plain)
    # a seed that is not seeded decodes the caption it decoded before
    untouched = [(c, p) for c, p in zip(caps, plain, strict=True) if PHRASE not in " ".join(c)]
    assert untouched and all(c == p for c, p in untouched)


@pytest.mark.slow
def test_seeded_rows_batched_as_alone(model: LoadedModel) -> None:
    """The lone-row path and the batched path force the same characters: each seed's caption
    is the same decoded alone as beside the others."""
    reqs = [
        CaptionRequest("one-does-not-simply", 2, seed=s, decoding=Decoding("natural"))
        for s in range(60)
    ]
    jobs = [make_job(model, r) for r in reqs]
    run_jobs(model, jobs)
    batched = [[c.boxes for c in j.captions()] for j in jobs]
    assert batched == captions_alone(model, reqs)
    assert any(PHRASE in " ".join(c[0]) for c in batched)


@pytest.mark.slow
def test_no_seed_with_start_text_or_own_slot(model: LoadedModel) -> None:
    caps = _captions(model, range(200), start="when ")
    assert all(c[0].startswith("when ") and PHRASE not in " ".join(c) for c in caps)
    own = dataclasses.replace(
        model,
        templates=TemplateTable(
            [e for e in model.templates.entries if e.slug != "one-does-not-simply"]
            + [entry("One Does Not Simply", slot=1)]
        ),
    )
    assert not any(PHRASE in " ".join(c) for c in _captions(own, range(200)))
