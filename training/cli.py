"""CLI subcommands for data, training and evaluation (registered by memebot.cli)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from memebot.artifact.configs import CONFIGS, DEFAULT_ARCH
from memebot.errors import DataError, UsageError
from memebot.settings import Settings


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    data = sub.add_parser("data", help="prepare, inspect or download caption data")
    dsub = data.add_subparsers(
        dest="data_command", required=True, metavar="{prepare,stats,download}"
    )
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

    t = sub.add_parser(
        "train",
        help="train a model and write a versioned artifact directory",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument("--arch", default=DEFAULT_ARCH, help=f"architecture: {', '.join(CONFIGS)}")
    t.add_argument(
        "--data", type=Path, default=settings.data_dir, help="ImgFlip575K directory or rows file"
    )
    t.add_argument(
        "--out", type=Path, required=True, help="artifact directory to create (must not exist)"
    )
    t.add_argument("--epochs", type=int, default=30, help="upper bound on epochs")
    t.add_argument("--batch-size", type=int, default=0, help="0 = architecture default (256)")
    t.add_argument("--lr", type=float, default=0.0, help="learning rate, 0 = architecture default")
    t.add_argument(
        "--steps-per-epoch", type=int, default=0, help="batches per epoch, 0 = full pass"
    )
    t.add_argument("--patience", type=int, default=3, help="early stopping patience (epochs)")
    t.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget for training")
    t.add_argument(
        "--seed", type=int, default=1337, help="random seed (weights, shuffling, dropout)"
    )
    t.add_argument("--xla", action="store_true", help="XLA-compile the training step (char-gru)")
    t.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "float32", "mixed_bfloat16"),
        help="training arithmetic; auto = mixed_bfloat16 for char-gru on a CPU with bfloat16 "
        "dot products (AVX512-BF16/AMX), else float32. Weights and artifacts are float32 always",
    )
    t.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="MODEL",
        help="start from this artifact's weights, vocabulary and config (fine-tuning)",
    )
    t.add_argument(
        "--resume", action="store_true", help="continue the unfinished run in OUT.partial/"
    )
    t.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help="write TensorBoard logs to DIR (tensorboard --logdir DIR)",
    )
    t.add_argument(
        "--distribute",
        choices=("none", "mirrored", "multiworker"),
        default="none",
        help="tf.distribute strategy: mirrored = all local GPUs, multiworker = TF_CONFIG cluster",
    )
    t.add_argument(
        "--limit", type=int, default=0, help="use only the first N training captions (smoke runs)"
    )
    t.add_argument(
        "--val-limit", type=int, default=0, help="validate on the first N val captions (0 = all)"
    )
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set hidden=512 (repeatable)",
    )
    t.add_argument("--quiet", action="store_true", help="no per-batch progress bar")
    t.set_defaults(func=cmd_train)

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
    e.add_argument("--limit", type=int, default=0, help="evaluate only the first N captions")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_eval)


def cmd_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from training.prepare import prepare, write_prepared

    if args.out.exists() and any(args.out.iterdir()):
        raise DataError(f"{args.out}: output directory exists and is not empty (--out)")
    prep = prepare(args.data, cache_dir=settings.cache_dir)
    print(prep.statistics())
    write_prepared(prep, args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from training.prepare import prepare

    print(prepare(args.data, cache_dir=settings.cache_dir).statistics())
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
    from training.train import TrainOptions, train

    if args.arch not in CONFIGS:
        raise UsageError(
            f"--arch {args.arch}: unknown architecture (choose from {', '.join(CONFIGS)})"
        )
    train(
        TrainOptions(
            data=args.data,
            out=args.out,
            arch=args.arch,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
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
            overrides=_parse_sets(args.overrides),
            verbose=0 if args.quiet else 1,
        )
    )
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from training.evaluate import evaluate
    from training.prepare import prepare
    from training.trained import load_trained

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
