"""`memebot crowd fit|eval`: the crowd scorer fitted on Imgflip's votes, and its figures
(registered by memebot.cli; the work is in training/crowd.py)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from memebot.crowd import CROWD_FILE
from memebot.errors import UsageError
from memebot.settings import Settings

HELP = "fit the crowd's taste (a caption scorer from Imgflip's votes) or measure it"


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    c = sub.add_parser(
        "crowd",
        help=HELP,
        description=HELP + ". Labels: votes per view, top vs bottom quartile within each "
        "template (docs/TRAINING.md).",
    )
    csub = c.add_subparsers(dest="crowd_command", required=True)
    f = csub.add_parser(
        "fit",
        help="fit the scorer for a model and write MODEL/crowd.npz",
    )
    _common(f, settings)
    f.add_argument(
        "--out", type=Path, default=None, help=f"file to write (default: MODEL/{CROWD_FILE})"
    )
    f.add_argument("--force", action="store_true", help="replace an existing --out file")
    f.add_argument(
        "--held-out",
        type=int,
        default=8,
        help="templates left out of fitting, to measure the scorer on templates it never saw "
        "(chosen by a hash of their names among those with 200 labelled captions or more; "
        "default: %(default)s)",
    )
    f.add_argument(
        "--l2",
        type=float,
        default=None,
        help="L2 strength (> 0); default: the best of a small grid on a slice of train",
    )
    f.set_defaults(func=cmd_fit)
    e = csub.add_parser(
        "eval",
        help="within-template AUC of the scorer beside caption length and the model's likelihood",
    )
    _common(e, settings)
    e.add_argument(
        "--scorer", type=Path, default=None, help=f"scorer file (default: MODEL/{CROWD_FILE})"
    )
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(func=cmd_eval)


def _common(p: argparse.ArgumentParser, settings: Settings) -> None:
    p.add_argument(
        "--data",
        type=Path,
        default=settings.data_dir,
        help="ImgFlip575K directory, with votes (default: %(default)s)",
    )
    p.add_argument(
        "--model",
        type=Path,
        default=Path("models/default"),
        help="the model artifact the scorer is for; its likelihood is a baseline "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--min-views",
        type=int,
        default=50,
        help="drop captions seen fewer times (default: %(default)s)",
    )
    p.add_argument(
        "--loglik-captions",
        type=int,
        default=3000,
        help="captions per set for the likelihood baseline; 0 skips it (default: %(default)s)",
    )


def _check(args: argparse.Namespace) -> None:
    if args.min_views < 1:
        raise UsageError(f"--min-views {args.min_views}: must be >= 1")
    if args.loglik_captions < 0:
        raise UsageError(f"--loglik-captions {args.loglik_captions}: must be >= 0")
    if not args.data.is_dir():
        raise UsageError(f"--data {args.data}: not an ImgFlip575K directory")


def _progress(quiet: bool) -> Callable[[str], None]:
    t0 = time.monotonic()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - t0:6.0f}s] {msg}", file=sys.stderr, flush=True)

    return say


def cmd_fit(args: argparse.Namespace, settings: Settings) -> int:
    from memebot.artifact.meta import read_meta
    from training.crowd import fit, summary

    _check(args)
    if args.l2 is not None and not args.l2 > 0:
        raise UsageError(f"--l2 {args.l2}: must be > 0")
    if args.held_out < 0:
        raise UsageError(f"--held-out {args.held_out}: must be >= 0")
    read_meta(args.model)  # a bad --model is refused before minutes of work
    out = args.out or args.model / CROWD_FILE
    if out.exists() and not args.force:
        raise UsageError(f"--out {out}: already exists (--force replaces it)")
    scorer = fit(
        args.data,
        args.model,
        cache_dir=settings.cache_dir,
        min_views=args.min_views,
        l2=args.l2,
        loglik_captions=args.loglik_captions,
        held_out=args.held_out,
        progress=_progress(False),
    )
    scorer.labels["command"] = " ".join(["memebot", *sys.argv[1:]])
    scorer.save(out)
    print(summary(scorer.metrics))
    print(f"wrote {out} (for model {scorer.model_version})")
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from memebot.artifact.meta import read_meta
    from memebot.crowd import load_crowd
    from training.crowd import dumps, evaluate, load_rows, summary

    _check(args)
    version = read_meta(args.model).version
    scorer = load_crowd(args.scorer or args.model / CROWD_FILE, version)
    say = _progress(args.json)
    held = scorer.labels.get("held_out_templates")  # the templates it was not fitted on
    if not isinstance(held, list):
        raise UsageError(f"{args.scorer or args.model / CROWD_FILE}: names no held-out templates")
    split = load_rows(args.data, settings.cache_dir, args.min_views, say, held_out=held)
    metrics = evaluate(
        scorer,
        split,
        args.model,
        loglik_captions=args.loglik_captions,
        progress=say,
    )
    print(dumps(metrics) if args.json else summary(metrics))
    return 0
