"""CLI subcommands for data, training and evaluation (registered by memebot.cli)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from memebot.artifact.configs import CONFIGS, DEFAULT_ARCH
from memebot.errors import DataError, UsageError
from memebot.settings import Settings


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    """`memebot train` and `memebot eval` (the `data` subcommands: register_data)."""
    _register_train(sub, settings)
    _register_eval(sub, settings)


def register_data(dsub: argparse._SubParsersAction, settings: Settings) -> None:
    """`memebot data prepare|stats|download|check-captions`."""
    p = dsub.add_parser(
        "prepare", help="clean + split + vocabulary; write them to --out and print statistics"
    )
    p.add_argument(
        "--data",
        type=Path,
        default=settings.data_dir,
        help="ImgFlip575K directory or [template_id, 'BOX|BOX|'] rows file (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="new directory for train/val/test JSONL, vocab, templates",
    )
    p.set_defaults(func=cmd_prepare)
    p = dsub.add_parser("stats", help="print the cleaning table and corpus statistics")
    p.add_argument(
        "--data", type=Path, default=settings.data_dir, help="dataset path (default: %(default)s)"
    )
    p.set_defaults(func=cmd_stats)
    p = dsub.add_parser("download", help="fetch the public ImgFlip575K dataset (resumable)")
    p.add_argument("--to", type=Path, required=True, help="destination directory")
    p.set_defaults(func=cmd_download)
    p = dsub.add_parser(
        "check-captions",
        help="which captions the training data's cleaning keeps, and which the corpus has",
        description="Reads JSON lines {template, boxes} and writes, per line, the caption as "
        "cleaning leaves it (null: a rule drops it) and whether the cleaned base corpus "
        "already holds it. The retrain worker's curation asks this of training.",
    )
    p.add_argument("input", type=Path, help="JSON lines with template and boxes")
    p.add_argument("--out", type=Path, required=True, help="JSON-lines file to write")
    p.add_argument(
        "--data", type=Path, default=settings.data_dir, help="base corpus (default: %(default)s)"
    )
    p.set_defaults(func=cmd_check_captions)


def _register_train(sub: argparse._SubParsersAction, settings: Settings) -> None:
    t = sub.add_parser(
        "train",
        help="train a model and write a versioned artifact directory",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _what_to_train(t.add_argument_group("model and data"), settings)
    _schedule(t.add_argument_group("schedule", "how long, how fast, on how much"), settings)
    _curated_rows(
        t.add_argument_group(
            "curated rows", "the community's rated captions (what `memebot worker` passes)"
        ),
        settings,
    )
    _hardware(t.add_argument_group("hardware and output"), settings)
    t.set_defaults(func=cmd_train)


def _what_to_train(t: argparse._ArgumentGroup, settings: Settings) -> None:
    t.add_argument("--arch", default=DEFAULT_ARCH, help=f"architecture: {', '.join(CONFIGS)}")
    t.add_argument(
        "--data", type=Path, default=settings.data_dir, help="ImgFlip575K directory or rows file"
    )
    t.add_argument(
        "--out", type=Path, required=True, help="artifact directory to create (must not exist)"
    )
    t.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="MODEL",
        help="start from this artifact's weights, vocabulary and config (fine-tuning)",
    )
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set hidden=512 (repeatable). Integers (widths, "
        "counts) >= 1, dropout rates in [0, 1), booleans true/false/yes/no/1/0",
    )
    t.add_argument(
        "--resume", action="store_true", help="continue the unfinished run in OUT.partial/"
    )
    t.add_argument(
        "--exclude-templates",
        default="",
        metavar="SLUG,SLUG",
        help="leave these templates' captions out of every split: a model that never saw "
        "them, to measure templates without data on (bench/unseen_templates.py)",
    )


def _schedule(t: argparse._ArgumentGroup, settings: Settings) -> None:
    t.add_argument("--epochs", type=int, default=30, help="upper bound on epochs (>= 1)")
    t.add_argument(
        "--batch-size", type=int, default=0, help="captions per batch (>= 1); 0 = default (256)"
    )
    t.add_argument(
        "--lr",
        type=float,
        default=0.0,
        help="learning rate (> 0); 0 = architecture default (char-gru and lstm 2e-3, "
        "seed-cnn and transformer 1e-3)",
    )
    t.add_argument(
        "--lr-schedule",
        default="plateau",
        choices=("plateau", "cosine"),
        help="plateau: halve the rate when val loss stalls; cosine: decay it to 5%% over "
        "--max-minutes and/or --epochs x --steps-per-epoch (ends a budgeted run at a low rate)",
    )
    t.add_argument(
        "--steps-per-epoch", type=int, default=0, help="batches per epoch (>= 1); 0 = full pass"
    )
    t.add_argument(
        "--patience", type=int, default=3, help="early stopping: epochs without improvement (>= 0)"
    )
    t.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="wall-clock budget for training (> 0), checked after every batch; the stopped "
        "epoch's validation and the final evaluation follow it. None by default",
    )
    t.add_argument(
        "--seed",
        type=int,
        default=1337,
        help="random seed for weights, shuffling, dropout (0 to 4294967295)",
    )
    t.add_argument(
        "--limit",
        type=int,
        default=0,
        help="use only the first N training captions (smoke runs; >= 1); 0 = all",
    )
    t.add_argument(
        "--val-limit",
        type=int,
        default=0,
        help="validate on the first N val captions (>= 1); 0 = all",
    )


def _curated_rows(t: argparse._ArgumentGroup, settings: Settings) -> None:
    t.add_argument(
        "--extra-data",
        type=Path,
        default=None,
        metavar="FILE",
        help="curated rows (JSON lines from `memebot data export-ratings`; its held-out and "
        "negative rows are skipped) added to the training split, each repeated "
        "round(weight x --extra-weight) times",
    )
    t.add_argument(
        "--extra-weight",
        type=float,
        default=1.0,
        help="multiplies each --extra-data weight (> 0)",
    )
    t.add_argument(
        "--negative-data",
        type=Path,
        default=None,
        metavar="FILE",
        help='downvoted rows (JSON lines; only "kind": "negative" rows of the train split '
        "are read) added with an unlikelihood term -log(1 - p) on each character, each "
        "repeated round(weight x --negative-weight) times (char-gru)",
    )
    t.add_argument(
        "--negative-weight",
        type=float,
        default=None,
        help="multiplies each --negative-data weight (> 0; default: --extra-weight)",
    )
    t.add_argument(
        "--unlikelihood-weight",
        type=float,
        default=1.0,
        help="weight of a --negative-data character's unlikelihood against an ordinary "
        "character's cross-entropy (> 0)",
    )


def _hardware(t: argparse._ArgumentGroup, settings: Settings) -> None:
    t.add_argument(
        "--xla", action="store_true", help="XLA-compile the training step (char-gru, lstm)"
    )
    t.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "float32", "mixed_bfloat16"),
        help="training arithmetic; auto = mixed_bfloat16 for char-gru and lstm on a CPU with bf16 "
        "dot products (AVX512-BF16/AMX), else float32. Weights and artifacts are float32 always",
    )
    t.add_argument(
        "--distribute",
        choices=("none", "mirrored", "multiworker"),
        default="none",
        help="tf.distribute strategy: mirrored = all local GPUs, multiworker = TF_CONFIG cluster",
    )
    t.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help="write TensorBoard logs to DIR (tensorboard --logdir DIR)",
    )
    t.add_argument("--quiet", action="store_true", help="no per-batch progress bar")


def _register_eval(sub: argparse._SubParsersAction, settings: Settings) -> None:
    e = sub.add_parser("eval", help="nats/char and accuracy of a model on a dataset")
    e.add_argument("model", type=Path, help="artifact directory")
    e.add_argument(
        "--data", type=Path, default=settings.data_dir, help="dataset path (default: %(default)s)"
    )
    e.add_argument(
        "--split",
        choices=("train", "val", "test", "all"),
        default="all",
        help="the project's deterministic split to evaluate (default: all)",
    )
    e.add_argument(
        "--limit", type=int, default=0, help="evaluate only the first N captions (>= 1); 0 = all"
    )
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_eval)


def _check_out_dir(out: Path) -> None:
    """`data prepare --out` must be a new or empty directory we can create and write."""
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise DataError(f"{out}: output directory exists and is not empty (--out)")
    parent = out
    while not parent.exists():  # the nearest existing ancestor is where mkdir will start
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"--out {out}: cannot create it, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"--out {out}: cannot write in {parent} (permission denied)")


def cmd_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from training.prepare import prepare, write_prepared

    _check_out_dir(args.out)
    prep = prepare(args.data, cache_dir=settings.cache_dir)
    print(prep.statistics())
    try:
        write_prepared(prep, args.out)
    except OSError as e:  # a full disk, or permissions that changed since the check
        raise DataError(f"--out {args.out}: cannot write ({e.strerror or e})") from e
    print(f"wrote {args.out}")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from training.prepare import prepare

    print(prepare(args.data, cache_dir=settings.cache_dir).statistics())
    return 0


def cmd_check_captions(args: argparse.Namespace, settings: Settings) -> int:
    from training.caption_check import check_captions, read_items, write_checked

    items = read_items(args.input)
    checked = check_captions(items, args.data, settings.cache_dir)
    write_checked(checked, args.out)
    kept = sum(c.boxes is not None for c in checked)
    in_base = sum(c.in_base for c in checked)
    print(f"checked {len(checked)} captions: {kept} kept by cleaning, {in_base} in the corpus")
    return 0


def cmd_download(args: argparse.Namespace, settings: Settings) -> int:
    from training.download import download

    download(args.to)
    print(f"downloaded to {args.to}; use --data {args.to}")
    return 0


def _parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set {item}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from memebot.tfquiet import import_tensorflow_quietly
    from training.train import TrainOptions, check_options, train

    if args.arch not in CONFIGS:
        raise UsageError(
            f"--arch {args.arch}: unknown architecture (choose from {', '.join(CONFIGS)})"
        )
    opts = TrainOptions(
        data=args.data,
        out=args.out,
        arch=args.arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        lr_schedule=args.lr_schedule,
        steps_per_epoch=args.steps_per_epoch,
        patience=args.patience,
        max_minutes=args.max_minutes,
        seed=args.seed,
        resume=args.resume,
        tensorboard=args.tensorboard,
        distribute=args.distribute,
        cache_dir=settings.cache_dir,
        limit=args.limit,
        val_limit=args.val_limit,
        init_from=args.init_from,
        jit=args.xla,
        precision=args.precision,
        extra_data=args.extra_data,
        extra_weight=args.extra_weight,
        negative_data=args.negative_data,
        negative_weight=args.negative_weight,
        unlikelihood_weight=args.unlikelihood_weight,
        overrides=_parse_sets(args.overrides),
        exclude_templates=tuple(s.strip() for s in args.exclude_templates.split(",") if s.strip()),
        verbose=0 if args.quiet else 1,
    )
    # A bad flag is reported before TensorFlow's few seconds of import, which are then quiet.
    check_options(opts)
    import_tensorflow_quietly()
    train(opts)
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from memebot.tfquiet import import_tensorflow_quietly
    from training.evaluate import evaluate
    from training.prepare import prepare
    from training.trained import load_trained

    if args.limit < 0:
        raise UsageError(f"--limit {args.limit}: must be >= 1, or 0 for all captions")
    import_tensorflow_quietly()
    model = load_trained(args.model)
    prep = prepare(args.data, cache_dir=settings.cache_dir)
    caps = prep.captions(args.split)[: args.limit or None]
    if not caps:
        raise DataError(f"{args.data}: no captions in split {args.split!r} after cleaning")
    res = evaluate(model, caps, progress=not args.json)
    if args.json:
        print(json.dumps(res.to_json()))
    else:
        print(f"model {model.version} on {args.data} ({args.split})")
        print(res.table())
    return 0
