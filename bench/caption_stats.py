"""How much a style's captions read like people's: word-pair variety, made-up words, lengths.

For each style, captions over the largest templates (the template's own box count, one seed
per caption, the style's engine options as the API fills them in) are set beside real Imgflip
captions of the same templates with the same box count, cleaned as training cleans them (so
lowercased, the model's alphabet):

- `distinct2`: distinct word pairs / all word pairs (pairs within a box), pooled over every
  caption of the sample. Variety grows with sample size, so the real sample has as many
  captions per template as the generated one.
- `oov`: the share of words seen fewer than OOV_MIN_COUNT times in the training split: made-up
  words. The real sample is drawn from the held-out splits (val, test), whose words the
  training counts did not see, so both sides are measured the same way.
- per template, mean generated length / mean real length (markers included, every real
  caption of that box count) over LENGTH_CAPTIONS captions, the first CAPTIONS among them;
  `length_ratio_worst` is the one furthest from 1. Fewer would measure chance: 40 captions of
  a template give its mean within about 5%, so the worst of 25 strays to 10-15% for any
  sampler; the real sample's own worst ratio (real `length_ratio_worst`, 40 a template) shows
  how far.

and the ratios generated / real: `distinct2_ratio` (target >= 0.90), `oov_ratio` (<= 1.0).

    python bench/caption_stats.py [--styles natural top-p-0.9] [--n-candidates 1]
        [--well-formed-weight 0] [--json]

A style is one of the bot's (its options as bot/memes.py asks, n_candidates included unless
--n-candidates is given) or a plain sampler of PLAIN.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

OOV_MIN_COUNT = 3  # a word seen fewer times than this in training is "made up"
TEMPLATES = 25  # the largest templates
CAPTIONS = 1000  # generated captions per style for word pairs and words, over TEMPLATES
# ... and for lengths: 160 a template put its mean within about ±2.5% by chance (40: ±5%, as
# far as a sampler's own errors), so the worst of 25 templates says something of the sampler.
LENGTH_CAPTIONS = 4000
_WORD = re.compile(r"[a-z0-9']+")


def words(box: str) -> list[str]:
    """A box's words: runs of letters, digits and apostrophes (punctuation separates)."""
    return _WORD.findall(box.lower())


def pairs(boxes: Iterable[str]) -> list[tuple[str, str]]:
    """Adjacent word pairs within each box (a pair never spans two boxes)."""
    out: list[tuple[str, str]] = []
    for box in boxes:
        w = words(box)
        out += pairwise(w)
    return out


def distinct2(captions: Iterable[Sequence[str]]) -> float:
    """Distinct word pairs / all word pairs over every caption (each a list of boxes); NaN
    when there is no pair."""
    every = [p for c in captions for p in pairs(c)]
    return len(set(every)) / len(every) if every else float("nan")


def word_counts(captions: Iterable[Sequence[str]]) -> Counter[str]:
    return Counter(w for c in captions for box in c for w in words(box))


def oov_share(
    captions: Iterable[Sequence[str]], counts: Mapping[str, int], min_count: int = OOV_MIN_COUNT
) -> float:
    """Share of the words of `captions` seen fewer than `min_count` times in `counts`."""
    ws = [w for c in captions for box in c for w in words(box)]
    return sum(counts.get(w, 0) < min_count for w in ws) / len(ws) if ws else float("nan")


def caption_length(boxes: Sequence[str]) -> int:
    """Characters of `box|box|`, markers included (what max_len and the length stats count)."""
    return sum(len(b) + 1 for b in boxes)


def length_ratios(
    generated: Mapping[str, Sequence[Sequence[str]]], real: Mapping[str, Sequence[Sequence[str]]]
) -> dict[str, float]:
    """Per template, mean generated length / mean real length."""
    return {
        t: statistics.mean(map(caption_length, g)) / statistics.mean(map(caption_length, real[t]))
        for t, g in generated.items()
        if g and real.get(t)
    }


def worst(ratios: Mapping[str, float]) -> tuple[str, float]:
    """The template whose ratio is furthest from 1, and that ratio."""
    return max(ratios.items(), key=lambda kv: abs(kv[1] - 1))


@dataclass(frozen=True)
class Reference:
    """What generated captions are compared with, read once from the prepared data."""

    templates: dict[str, int]  # slug -> box count, the largest templates first
    sample: dict[str, list[tuple[str, ...]]]  # held-out real captions per template (the sample)
    every: dict[str, list[tuple[str, ...]]]  # every real caption per template (lengths)
    counts: Counter[str]  # word counts of the training split

    @property
    def real(self) -> dict[str, float]:
        pooled = [c for cs in self.sample.values() for c in cs]
        return {
            "distinct2": distinct2(pooled),
            "oov": oov_share(pooled, self.counts),
            "mean_length": statistics.mean(caption_length(c) for c in pooled),
            # the sample's own worst template against every real caption: how far from 1 a
            # sample this size strays by chance alone (the noise floor of length_ratio_worst)
            "length_ratio_worst": worst(length_ratios(self.sample, self.every))[1],
        }


def reference(
    prepared: Any, model: Any, n_templates: int = TEMPLATES, per_template: int = 40, seed: int = 0
) -> Reference:
    """The `n_templates` largest templates the model has a slot for, their box counts, and
    `per_template` held-out real captions of each with that box count (a seeded draw)."""
    every_caption = prepared.captions("all")
    sizes = Counter(c.template for c in every_caption)
    templates: dict[str, int] = {}
    for slug, _ in sizes.most_common():
        e = model.templates.get(slug)
        if e is not None and e.slot:
            templates[slug] = e.box_count
        if len(templates) == n_templates:
            break
    every: dict[str, list[tuple[str, ...]]] = {t: [] for t in templates}
    for c in every_caption:
        if c.template in templates and len(c.boxes) == templates[c.template]:
            every[c.template].append(c.boxes)
    held: dict[str, list[tuple[str, ...]]] = {t: [] for t in templates}
    for split in ("val", "test"):
        for c in prepared.captions(split):
            if c.template in templates and len(c.boxes) == templates[c.template]:
                held[c.template].append(c.boxes)
    rng = np.random.default_rng(seed)
    sample = {t: [cs[i] for i in rng.permutation(len(cs))[:per_template]] for t, cs in held.items()}
    return Reference(
        templates, sample, every, word_counts(c.boxes for c in prepared.captions("train"))
    )


def generate(
    model: Any,
    ref: Reference,
    options: Any,
    per_template: int,
    seed: int = 0,
    name_seed: bool = True,
) -> dict[str, list[tuple[str, ...]]]:
    """`per_template` captions of each reference template written with engine `options`
    (a MemeOptions: decoding, n_candidates and the rest filled in as the API does), seeds
    `seed`, `seed` + 1, ... one per caption, decoded in one batch as the engine batches."""
    from engine.decoding.batch import run_jobs
    from engine.decoding.jobs import CaptionRequest, make_job
    from engine.decoding.pickers import Decoding
    from engine.service import options_used

    jobs = []
    for t, (slug, n_boxes) in enumerate(ref.templates.items()):
        used = options_used(options, n_boxes)
        decoding = Decoding(**used.decoding.model_dump())
        for i in range(per_template):
            req = CaptionRequest(
                slug,
                n_boxes,
                max_len=used.max_len,
                decoding=decoding,
                # a seed of its own per caption: the same seeds on every template would draw
                # the same box lengths on each, and their noise would not average out
                seed=seed + t * per_template + i,
                n_candidates=used.n_candidates,
                well_formed_weight=used.well_formed_weight,
                name_seed=name_seed,  # False: templates without captions get no name seed
            )
            jobs.append(make_job(model, req))
    run_jobs(model, jobs)
    out: dict[str, list[tuple[str, ...]]] = {t: [] for t in ref.templates}
    for j in jobs:
        out[j.req.template].append(tuple(j.captions()[0].boxes))
    return out


def compare(
    generated: Mapping[str, Sequence[Sequence[str]]], ref: Reference, sample: int | None = None
) -> dict[str, Any]:
    """The figures of one style against the reference (keys as bench/engine.py --json): word
    pairs and words over the first `sample` captions of each template (all: None), lengths
    over all of them."""
    pooled = [c for cs in generated.values() for c in cs[:sample]]
    real = ref.real
    ratios = length_ratios(generated, ref.every)
    name, ratio = worst(ratios)
    d2, oov = distinct2(pooled), oov_share(pooled, ref.counts)
    return {
        "captions": len(pooled),
        "length_captions": sum(map(len, generated.values())),
        "distinct2": d2,
        "oov": oov,
        "mean_length": statistics.mean(caption_length(c) for c in pooled),
        "distinct2_ratio": _ratio(d2, real["distinct2"]),
        "oov_ratio": _ratio(oov, real["oov"]),
        "length_ratio_worst": ratio,
        "length_ratio_worst_template": name,
        "identical_share": 1 - len(set(map(tuple, pooled))) / len(pooled),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# Plain samplers the bot offers no style for, measured beside its styles for comparison.
PLAIN = {
    "top-p-0.9": {"decoding": "top-p", "top_p": 0.9},
    "temperature-1": {"decoding": "temperature", "temperature": 1.0},
}


def style_body(name: str) -> dict[str, Any]:
    """The engine options (a request body) of a bot style (bot/memes.py) or a PLAIN sampler."""
    from bot.memes import STYLE_OPTIONS

    if name in PLAIN:
        return dict(PLAIN[name])
    return STYLE_OPTIONS[name].to_body()  # type: ignore[index]


def style_stats(
    model: Any,
    ref: Reference,
    styles: Sequence[str],
    captions: int = CAPTIONS,
    n_candidates: int | None = None,
    seed: int = 0,
    length_captions: int = LENGTH_CAPTIONS,
    well_formed_weight: float | None = None,
) -> dict[str, dict[str, Any]]:
    """`compare` for each of the bot's `styles` (bot/memes.py's options; n_candidates: the
    API's default unless given): `captions` for word pairs and words, max(captions,
    length_captions) for lengths (the first ones are the same captions)."""
    from engine.schema import MemeOptions

    sample = max(1, captions // len(ref.templates))
    per_template = max(sample, length_captions // len(ref.templates))
    out = {}
    for style in styles:
        body = style_body(style)
        if n_candidates is not None:
            body["n_candidates"] = n_candidates
        if well_formed_weight is not None:
            body["well_formed_weight"] = well_formed_weight
        gen = generate(model, ref, MemeOptions(**body), per_template, seed)
        out[style] = compare(gen, ref, sample)
    return out


def engine_figures(
    model: Any, prepared: Any, captions: int = CAPTIONS, length_captions: int = LENGTH_CAPTIONS
) -> dict[str, Any]:
    """What bench/engine.py --json reports: each of the bot's styles as the bot asks for it
    (`styles`), and the bot's default style's three ratios at the top level."""
    from memebot.choices import DEFAULT_STYLE, STYLES

    ref = reference(prepared, model, per_template=max(1, captions // TEMPLATES))
    stats = style_stats(model, ref, STYLES, captions, length_captions=length_captions)
    keys = ("distinct2_ratio", "oov_ratio", "length_ratio_worst")
    return {
        "captions_real": ref.real,
        "styles": stats,
        "default_style": DEFAULT_STYLE,
        **{f"default_style_{k}": stats[DEFAULT_STYLE][k] for k in keys},
    }


def table(real: Mapping[str, float], stats: Mapping[str, Mapping[str, Any]]) -> str:
    """The figures as a Markdown table, real captions first."""
    lines = [
        "| style | distinct word pairs / all pairs | words seen < 3 times | mean length "
        "| distinct2 ratio | oov ratio | worst template length ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| real captions | {real['distinct2']:.2f} | {real['oov']:.1%} "
        f"| {real['mean_length']:.1f} | 1 | 1 | {real['length_ratio_worst']:.2f} (the sample) |",
    ]
    for style, s in stats.items():
        lines.append(
            f"| `{style}` | {s['distinct2']:.2f} | {s['oov']:.1%} | {s['mean_length']:.1f} "
            f"| {s['distinct2_ratio']:.2f} | {s['oov_ratio']:.2f} "
            f"| {s['length_ratio_worst']:.2f} ({s['length_ratio_worst_template']}) |"
        )
    return "\n".join(lines)


def main() -> int:
    from engine.service import load_engine_model
    from memebot.choices import STYLES
    from memebot.settings import Settings
    from training.prepare import prepare

    settings = Settings.from_env()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", type=Path, default=settings.model_dir)
    p.add_argument("--styles", nargs="+", choices=[*STYLES, *PLAIN], default=list(STYLES))
    p.add_argument("--captions", type=int, default=CAPTIONS, help="generated captions per style")
    p.add_argument(
        "--n-candidates", type=int, default=None, help="candidates per caption (default: API's)"
    )
    p.add_argument(
        "--length-captions", type=int, default=LENGTH_CAPTIONS, help="captions for lengths"
    )
    p.add_argument(
        "--well-formed-weight", type=float, default=None, help="of the pick (default: style's)"
    )
    p.add_argument("--seed", type=int, default=0, help="first seed (one per caption)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    model = load_engine_model(settings, args.model, warm=False)
    prepared = prepare(settings.data_dir, cache_dir=settings.cache_dir)
    ref = reference(prepared, model, per_template=max(1, args.captions // TEMPLATES))
    stats = style_stats(
        model,
        ref,
        args.styles,
        args.captions,
        args.n_candidates,
        args.seed,
        args.length_captions,
        args.well_formed_weight,
    )
    if args.json:
        print(json.dumps({"real": ref.real, "styles": stats}))
    else:
        print(table(ref.real, stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
