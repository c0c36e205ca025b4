"""Templates the model never saw: how its captions for them compare with people's.

Run on a model trained with `memebot train --exclude-templates a,b` (its meta.json names them):
the withheld templates have captions in the data, so what the model writes for them with its
generic slot can be set beside real ones, as for a template that truly has no captions.

- nats/char of the withheld templates' held-out (val, test) captions, beside the model's val
  figure on the templates it saw;
- bench/caption_stats.py's figures (distinct word pairs ratio, made-up words ratio, each
  template's mean length / its real captions' mean) for the default style (`natural`, as the
  bot asks for it), on the withheld templates without and with the name seed
  (engine/decoding/unseen.py), and on as many templates the model saw (the largest with the
  same box counts) with the same number of captions each;
- the share of captions with a box opening with the template's name, real and generated;
- `--estimate`: NAME_OPENS_FIRST / NAME_OPENS_LAST as measured on the templates with captions
  (the withheld ones left out), the numbers engine/decoding/unseen.py holds.

    python bench/unseen_templates.py --model /path/to/withheld-model [--captions 300] [--json]

Word counts for made-up words are the training split's without the withheld templates (what
the model learned from).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.caption_stats import Reference, compare, generate, length_ratios, style_body, word_counts

PER_TEMPLATE = 300  # generated (and real sample) captions per template


def name_shares(
    captions: Iterable[Sequence[str]], phrase: str, n_boxes: int
) -> tuple[float, float]:
    """Share of `captions` whose first box opens with `phrase`, and whose last box does (0 for
    one box)."""
    caps = list(captions)
    if not caps:
        return float("nan"), float("nan")
    first = sum(c[0].lower().startswith(phrase) for c in caps) / len(caps)
    last = sum(c[-1].lower().startswith(phrase) for c in caps) / len(caps) if n_boxes > 1 else 0.0
    return first, last


def estimate(prepared: Any, withheld: Iterable[str] = ()) -> dict[str, Any]:
    """NAME_OPENS_FIRST / NAME_OPENS_LAST: over the templates with captions (not `withheld`)
    whose names read as phrases (unseen.phrase_of), the mean share of their captions (with
    their most common box count) whose first / last box opens with the name; last over the
    templates of two boxes or more (NaN: no such template)."""
    from engine.decoding.unseen import phrase_of

    skip = set(withheld)
    by: dict[str, list[tuple[str, ...]]] = {}
    for c in prepared.captions("all"):
        if c.template not in skip:
            by.setdefault(c.template, []).append(c.boxes)
    firsts, lasts, names = [], [], []
    for slug, caps in sorted(by.items()):
        meta = prepared.templates_meta.get(slug)
        phrase = phrase_of(meta.name if meta else slug.replace("-", " "))
        if phrase is None:
            continue
        k = Counter(map(len, caps)).most_common(1)[0][0]
        first, last = name_shares([c for c in caps if len(c) == k], phrase, k)
        firsts.append(first)
        if k > 1:
            lasts.append(last)
        names.append(slug)
    return {
        "templates": names,
        "name_opens_first": statistics.mean(firsts) if firsts else float("nan"),
        "name_opens_last": statistics.mean(lasts) if lasts else float("nan"),
    }


def withheld_reference(
    prepared: Any, model: Any, slugs: Sequence[str], per_template: int, seed: int = 0
) -> Reference:
    """bench/caption_stats.Reference for `slugs` (their box count from the model's table): a
    seeded sample of their held-out captions, all of their captions for lengths, and the
    training split's word counts without `slugs`."""
    templates = {s: _entry(model, s).box_count for s in slugs}
    every: dict[str, list[tuple[str, ...]]] = {t: [] for t in templates}
    held: dict[str, list[tuple[str, ...]]] = {t: [] for t in templates}
    for split in ("train", "val", "test"):
        for c in prepared.captions(split):
            if c.template in templates and len(c.boxes) == templates[c.template]:
                every[c.template].append(c.boxes)
                if split != "train":
                    held[c.template].append(c.boxes)
    rng = np.random.default_rng(seed)
    sample = {t: [cs[i] for i in rng.permutation(len(cs))[:per_template]] for t, cs in held.items()}
    skip = set(slugs)
    counts = word_counts(c.boxes for c in prepared.captions("train") if c.template not in skip)
    return Reference(templates, sample, every, counts)


def _entry(model: Any, slug: str) -> Any:
    e = model.templates.get(slug)
    if e is None:
        raise SystemExit(f"{slug}: not in the model's template table")
    return e


def seen_slugs(prepared: Any, model: Any, box_counts: Sequence[int]) -> list[str]:
    """For each box count in `box_counts`, the next largest template the model has a slot for
    with that box count."""
    sizes = Counter(c.template for c in prepared.captions("all"))
    picked: list[str] = []
    for k in box_counts:
        for slug, _ in sizes.most_common():
            e = model.templates.get(slug)
            if e is not None and e.slot and e.box_count == k and slug not in picked:
                picked.append(slug)
                break
    return picked


def nats_per_char(model_dir: Path, captions: Sequence[Any]) -> float:
    from training.evaluate import evaluate
    from training.trained import load_trained

    return evaluate(load_trained(model_dir), list(captions), progress=False).nats_per_char


def row(
    gen: Mapping[str, Sequence[Sequence[str]]], ref: Reference, phrases: Mapping[str, str | None]
) -> dict[str, Any]:
    """compare()'s figures, each template's length ratio, and the name shares."""
    out = compare(gen, ref)
    out["length_ratios"] = length_ratios(gen, ref.every)
    out["mean_length_real"] = ref.real["mean_length"]
    out["name_opens"] = {
        t: name_shares(gen[t], p, ref.templates[t]) for t, p in phrases.items() if p is not None
    }
    out["name_opens_real"] = {
        t: name_shares(ref.every[t], p, ref.templates[t]) for t, p in phrases.items() if p
    }
    return out


def measure(
    model_dir: Path, prepared: Any, per_template: int = PER_TEMPLATE, seed: int = 0
) -> dict[str, Any]:
    from engine.decoding.unseen import phrase_of
    from engine.schema import MemeOptions
    from engine.service import load_engine_model
    from memebot.choices import DEFAULT_STYLE
    from memebot.settings import Settings

    meta = json.loads((model_dir / "meta.json").read_text())
    withheld = list(meta["extra"].get("withheld_templates") or [])
    if not withheld:
        raise SystemExit(f"{model_dir}: trained without --exclude-templates (nothing withheld)")
    # as the engine loads it: the withheld templates' lengths borrowed (memebot/lengths.py)
    model = load_engine_model(Settings.from_env(), model_dir, warm=False)
    options = MemeOptions(**style_body(DEFAULT_STYLE))
    ref = withheld_reference(prepared, model, withheld, per_template, seed)
    phrases = {t: phrase_of(_entry(model, t).name) for t in withheld}
    held = [c for s in ("val", "test") for c in prepared.captions(s) if c.template in set(withheld)]
    out: dict[str, Any] = {
        "model": meta["version"],
        "withheld": withheld,
        "style": DEFAULT_STYLE,
        "captions_per_template": per_template,
        "real": ref.real,
        "nats_per_char_withheld": nats_per_char(model_dir, held),
        "withheld_captions_scored": len(held),
        "nats_per_char_seen_val": meta["metrics"]["val_nats_per_char"],
    }
    for name, seeded in (("generic", False), ("name_seed", True)):
        gen = generate(model, ref, options, per_template, seed, name_seed=seeded)
        out[name] = row(gen, ref, phrases)
    seen = seen_slugs(prepared, model, [ref.templates[t] for t in withheld])
    seen_ref = withheld_reference(prepared, model, seen, per_template, seed)
    gen = generate(model, seen_ref, options, per_template, seed)
    out["seen"] = row(gen, seen_ref, {t: phrase_of(_entry(model, t).name) for t in seen})
    out["seen"]["templates"] = seen
    out["seen_real"] = seen_ref.real
    out["estimate"] = estimate(prepared, withheld)
    return out


def table(r: Mapping[str, Any]) -> str:
    lines = [
        "| captions of | nats/char | distinct2 ratio | oov ratio | mean length (real) "
        "| length ratio per template | box opens with the name, first / last (real) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for key, label, nats in (
        ("generic", "withheld, generic slot", r["nats_per_char_withheld"]),
        ("name_seed", "withheld, generic slot + name seed", r["nats_per_char_withheld"]),
        ("seen", "seen (" + ", ".join(r["seen"]["templates"]) + "), own slot", None),
    ):
        s = r[key]
        real_len = r["seen_real"]["mean_length"] if key == "seen" else r["real"]["mean_length"]
        ratios = ", ".join(f"{t} {v:.2f}" for t, v in s["length_ratios"].items())
        names = "; ".join(
            f"{t} {g[0]:.0%} / {g[1]:.0%} ({s['name_opens_real'][t][0]:.0%} / "
            f"{s['name_opens_real'][t][1]:.0%})"
            for t, g in s["name_opens"].items()
        )
        lines.append(
            f"| {label} | {'' if nats is None else f'{nats:.3f}'} | {s['distinct2_ratio']:.2f} "
            f"| {s['oov_ratio']:.2f} | {s['mean_length']:.1f} ({real_len:.1f}) | {ratios} "
            f"| {names or '-'} |"
        )
    return "\n".join(lines)


def main() -> int:
    from memebot.settings import Settings
    from training.prepare import prepare

    settings = Settings.from_env()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", type=Path, help="a model trained with --exclude-templates")
    p.add_argument("--captions", type=int, default=PER_TEMPLATE, help="per template")
    p.add_argument("--seed", type=int, default=0, help="first seed (one per caption)")
    p.add_argument("--estimate", action="store_true", help="only the name shares' estimate")
    p.add_argument("--exclude", default="", help="--estimate: templates to leave out (a,b)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    prepared = prepare(settings.data_dir, cache_dir=settings.cache_dir)
    if args.estimate:
        est = estimate(prepared, [s for s in args.exclude.split(",") if s])
        print(json.dumps(est) if args.json else json.dumps(est, indent=1))
        return 0
    if args.model is None:
        p.error("--model is required (unless --estimate)")
    r = measure(args.model, prepared, args.captions, args.seed)
    print(json.dumps(r) if args.json else table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
