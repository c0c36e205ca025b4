"""`memebot engine` (the HTTP server) and `memebot generate` (the same pipeline in-process)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path

from engine.decoding.pickers import METHODS
from memebot.errors import UsageError
from memebot.settings import Settings


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    e = sub.add_parser(
        "engine",
        help="serve the model over HTTP (see docs/ENGINE.md)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    e.add_argument("--host", default=settings.engine_host, help="bind address")
    e.add_argument("--port", type=int, default=settings.engine_port, help="TCP port")
    e.add_argument("--model", type=Path, default=settings.model_dir, help="artifact directory")
    e.set_defaults(func=cmd_engine)

    g = sub.add_parser(
        "generate",
        help="write a caption and render the meme (no server needed)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g.add_argument("template", help="slug, name, alias or Imgflip id, e.g. distracted-boyfriend")
    g.add_argument("--model", type=Path, default=settings.model_dir, help="artifact directory")
    g.add_argument("--start", default="", help="the caption starts with this text; '|' ends a box")
    g.add_argument(
        "--boxes", type=int, default=None, help="number of boxes (default: the template's)"
    )
    g.add_argument(
        "--decoding",
        default="calibrated",
        choices=METHODS,
        metavar="METHOD",
        help="calibrated: the article's threshold rule with box lengths drawn from the "
        "template's real captions; threshold: the rule as written; also "
        + ", ".join(m for m in METHODS if m not in ("calibrated", "threshold"))
        + " (docs/ENGINE.md)",
    )
    g.add_argument("--beam-width", type=int, default=5, help="beam: texts kept per step")
    g.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="temperature T: log-probabilities divided by T",
    )
    g.add_argument("--top-k", type=int, default=0, help="top-k: characters kept (0 = all)")
    g.add_argument("--top-p", type=float, default=1.0, help="top-p: probability mass kept")
    g.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="threshold: 0.1, beam: 0.0001 (the article's values)",
    )
    g.add_argument("--seed", type=int, default=None, help="same seed, same caption")
    g.add_argument("-n", type=int, default=1, help="captions to print (the first is rendered)")
    g.add_argument("--format", choices=("jpeg", "png", "webp"), default=settings.image_format)
    g.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="image path (default: MEMEBOT_OUTPUT_DIR/<template>-<time>.<ext>)",
    )
    g.add_argument("--no-image", action="store_true", help="print the caption only")
    g.set_defaults(func=cmd_generate)


def cmd_engine(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from engine.app import build_app
    from engine.service import load_service

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    service = load_service(settings, args.model)
    logging.getLogger("memebot.engine").info(
        "model %s loaded; listening on http://%s:%d", service.model.version, args.host, args.port
    )
    web.run_app(
        build_app(service),
        host=args.host,
        port=args.port,
        print=None,
        # Off by default: at hundreds of requests a second the log line costs more CPU than
        # the request's own handling; /metrics counts requests by route and status.
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
    )
    return 0


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from engine.service import MemeParams, MemeResult, load_service
    from engine.validate import BadRequest, parse_meme_request

    body: dict[str, object] = {
        "template": args.template,
        "start": args.start,
        "decoding": args.decoding,
        "n": args.n,
        "beam_width": args.beam_width,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "format": args.format,
        "image": not args.no_image,
    }
    for key, value in (("boxes", args.boxes), ("seed", args.seed), ("min_score", args.min_score)):
        if value is not None:
            body[key] = value
    try:  # the same validation as the HTTP API, reported with the CLI's flag names
        params: MemeParams = parse_meme_request(body, default_format=settings.image_format).params
    except BadRequest as e:
        raise UsageError(f"--{e.field.replace('_', '-')}: {str(e).split(': ', 1)[1]}") from e
    service = load_service(settings, args.model)
    service.resolve(params.template)  # unknown template: fail before any work

    async def run() -> MemeResult:
        await service.start()
        try:
            return await service.generate(params)
        finally:
            await service.stop()

    result = asyncio.run(run())
    for c in result.captions:
        print(f"{result.template.name}: " + " | ".join(c.boxes))
    if result.image is not None:
        ext = "jpg" if result.image_format == "jpeg" else str(result.image_format)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = args.output or settings.output_dir / f"{result.template.slug}-{stamp}.{ext}"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(result.image)
        print(f"image: {out}")
    return 0
