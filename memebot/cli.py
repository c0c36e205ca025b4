"""The `memebot` console script: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from memebot import __version__
from memebot.errors import MemebotError
from memebot.settings import Settings


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    from training import cli as training_cli

    parser = argparse.ArgumentParser(
        prog="memebot",
        description="Meme captions from a character-level neural network.",
        epilog="Settings come from MEMEBOT_* environment variables; see docs/SETTINGS.md.",
    )
    parser.add_argument("--version", action="version", version=f"memebot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    training_cli.register(sub, settings)

    g = sub.add_parser("generate", help="write a caption for a template with the shipped model")
    g.add_argument("template", help="slug, name, alias or Imgflip id, e.g. distracted-boyfriend")
    g.add_argument(
        "--model",
        type=Path,
        default=settings.model_dir,
        help="artifact directory (default: %(default)s)",
    )
    g.add_argument("--start", default="", help="the caption starts with this text; '|' ends a box")
    g.add_argument(
        "--boxes", type=int, default=None, help="number of boxes (default: the template's)"
    )
    g.add_argument(
        "--decoding",
        default="threshold",
        choices=("threshold", "greedy", "temperature", "top-k", "top-p", "top-k-top-p"),
    )
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--min-score", type=float, default=0.1, help="threshold decoding's min_score")
    g.add_argument("--seed", type=int, default=None, help="same seed, same caption")
    g.add_argument("-n", type=int, default=1, help="number of captions")
    g.set_defaults(func=cmd_generate)
    return parser


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from memebot.errors import UsageError
    from training.runtime import load_model
    from training.sampling import Decoding, sample_captions

    if args.boxes is not None and not 1 <= args.boxes <= 8:
        raise UsageError(f"--boxes {args.boxes}: must be between 1 and 8")
    if args.n < 1:
        raise UsageError(f"-n {args.n}: must be at least 1")
    model = load_model(args.model)
    entry = model.templates.lookup(args.template)
    dec = Decoding(args.decoding, args.min_score, args.temperature, args.top_k, args.top_p)
    boxes = [args.boxes or entry.box_count] * args.n
    for s in sample_captions(
        model,
        [entry.slug] * args.n,
        n_boxes=boxes,
        start=args.start.lower(),
        decoding=dec,
        seed=args.seed,
    ):
        print(f"{entry.name}: " + " | ".join(s.boxes))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        settings = Settings.from_env()
    except MemebotError as e:
        print(f"memebot: error: {e}", file=sys.stderr)
        return e.exit_code
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    try:
        if args.command in ("train", "eval", "generate"):
            from memebot.tfquiet import import_tensorflow_quietly

            import_tensorflow_quietly()
        return int(args.func(args, settings))
    except MemebotError as e:
        print(f"memebot: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("memebot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
