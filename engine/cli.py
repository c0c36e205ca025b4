"""`memebot engine` (the HTTP server) and `memebot generate` (the same pipeline in-process)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import socket
import time
from pathlib import Path

from pydantic import ValidationError

from engine.flags import add_model_flags, flag_problem, given
from engine.schema import BadRequest, MemeRequest, bad_request, check_caption_fits
from memebot.errors import UsageError
from memebot.eventloop import new_event_loop
from memebot.logs import get_logger
from memebot.settings import Settings

SUFFIX_FORMAT = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".webp": "webp"}

log = get_logger(__name__)


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    e = sub.add_parser(
        "engine",
        help="serve the model over HTTP (see docs/ENGINE.md)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    e.add_argument("--host", default=settings.engine_host, help="bind address")
    e.add_argument("--port", type=int, default=settings.engine_port, help="TCP port")
    e.add_argument("--model", type=Path, default=settings.model_dir, help="artifact directory")
    e.add_argument(
        "--insecure-no-token",
        action="store_true",
        help="serve on a non-loopback --host without MEMEBOT_ENGINE_TOKEN (anyone who can "
        "reach it can make memes and reload the model); refused otherwise",
    )
    e.set_defaults(func=cmd_engine)

    g = sub.add_parser(
        "generate",
        help="write a caption and render the meme (no server needed)",
        description="The same options as POST /v1/memes (docs/ENGINE.md).",
    )
    g.add_argument("template", help="slug, name, alias or Imgflip id, e.g. distracted-boyfriend")
    g.add_argument("--model", type=Path, default=settings.model_dir, help="artifact directory")
    add_model_flags(
        g,
        MemeRequest,
        skip=frozenset({"template", "response"}),
        shown_defaults={"format": f"MEMEBOT_IMAGE_FORMAT, now {settings.image_format}"},
    )
    g.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="image file (default: MEMEBOT_OUTPUT_DIR/<template>-<time>.<ext>); its extension "
        "sets the format when --format is not given",
    )
    g.set_defaults(func=cmd_generate)


def cmd_engine(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from engine.app import build_app
    from engine.service import load_service

    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: must be between 1 and 65535")
    _check_token(args.host, settings.engine_secret, insecure=args.insecure_no_token)
    _check_can_listen(args.host, args.port)  # before the model loads: seconds saved
    loop, loop_name = new_event_loop(settings.event_loop)  # before the model: a bad choice is quick
    try:
        service = load_service(settings, args.model)
    except BaseException:
        loop.close()
        raise
    log.info(
        "model %s loaded; listening on http://%s:%d (%s)",
        service.model.version,
        args.host,
        args.port,
        loop_name,
    )
    try:
        web.run_app(
            build_app(service),
            host=args.host,
            port=args.port,
            print=None,
            # Off by default: at hundreds of requests a second the log line costs more CPU than
            # the request's own handling; /metrics counts requests by route and status.
            access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
            loop=loop,
        )
    except OSError as e:  # taken between the check and now
        raise UsageError(f"--port {args.port}: cannot listen on {args.host} ({e.strerror})") from e
    return 0


def is_loopback(host: str) -> bool:
    """Whether `host` reaches this machine only: a loopback address, `localhost`, or a name that
    resolves to loopback addresses only. "" and 0.0.0.0 listen on every interface."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass  # a name: what it resolves to decides
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False  # unresolvable: listening will fail with its own message
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def _check_token(host: str, token: str | None, *, insecure: bool) -> None:
    """Safe by default: without a token the engine answers anyone, /v1/model/reload included,
    so it listens beyond this machine only when told to."""
    if token or is_loopback(host):
        return
    if not insecure:
        raise UsageError(
            f"--host {host or '(every interface)'} is reachable from other machines and "
            "MEMEBOT_ENGINE_TOKEN is not set: set it (clients send it as a bearer token), "
            "or pass --insecure-no-token to serve without one"
        )
    log.warning(
        "serving on %s without MEMEBOT_ENGINE_TOKEN (--insecure-no-token): anyone who can "
        "reach it can make memes and reload the model",
        host,
    )


def _check_can_listen(host: str, port: int) -> None:
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise UsageError(
            f"--host {host} --port {port}: cannot listen there ({e.strerror or e})"
        ) from e


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from engine.catalog import Catalog
    from engine.service import MemeResult, load_service

    body = {"template": args.template, **given(args, MemeRequest)}
    if args.output is not None:
        suffix_format = _suffix_format(args.output)
        if "format" not in body:
            body["format"] = suffix_format
        elif body["format"] != suffix_format:
            raise UsageError(
                f"-o {args.output}: the suffix means {suffix_format}, --format says "
                f"{body['format']} (drop one or make them agree)"
            )
    positional = {"template": "TEMPLATE"}
    try:  # the same validation as the HTTP API, reported with the CLI's flag names
        req = MemeRequest.model_validate(body)
    except BadRequest as e:
        raise UsageError(flag_problem(e, positional=positional)) from e
    except ValidationError as e:
        raise UsageError(flag_problem(bad_request(e), positional=positional)) from e
    # Everything the user can get wrong is checked before the model loads.
    template = Catalog.load().lookup(req.template.strip())
    try:
        check_caption_fits(req, req.boxes or template.box_count)
    except BadRequest as e:
        raise UsageError(flag_problem(e, positional=positional)) from e
    fmt = req.format or settings.image_format
    out = _output_path(args.output, settings, template.slug, fmt) if req.image else None
    service = load_service(settings, args.model, warm=False)  # a few rows, once

    async def run() -> MemeResult:
        await service.start()
        try:
            return await service.generate(req, template)
        finally:
            await service.stop()

    try:
        result = asyncio.run(run())
    except BadRequest as e:  # what only the loaded model can say (a transformer's max_len)
        raise UsageError(flag_problem(e, positional=positional)) from e
    for c in result.captions:
        print(f"{result.template.name}: " + " | ".join(c.boxes))
    if result.image is not None and out is not None:
        _write_atomically(out, result.image, flag="-o" if args.output else "MEMEBOT_OUTPUT_DIR")
        print(f"image: {out}")
    return 0


def _suffix_format(path: Path) -> str:
    """The image format `-o`'s suffix names (its bytes must match what a viewer expects)."""
    if path.is_dir():
        raise UsageError(f"-o {path}: is a directory (give a file name)")
    fmt = SUFFIX_FORMAT.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"-o {path}: unknown image suffix {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(SUFFIX_FORMAT)}"
        )
    return fmt


def _partial(path: Path) -> Path:
    """The temporary file an image is written to beside `path`, then renamed."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def _output_path(given_path: Path | None, settings: Settings, slug: str, fmt: str) -> Path:
    """Where the image goes, checked now by creating its temporary file there (a directory, a
    missing or unwritable parent, a file system that refuses new files...)."""
    if given_path is not None:
        parent, flag = given_path.parent, f"-o {given_path}"
        out = given_path
    else:
        parent, flag = settings.output_dir, f"MEMEBOT_OUTPUT_DIR={settings.output_dir}"
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{flag}: not a directory")
        ext = "jpg" if fmt == "jpeg" else fmt
        out = parent / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}.{ext}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{flag}: cannot create {parent} ({e.strerror or e})") from e
    probe = _partial(out)
    try:  # what the write will do, before seconds of loading and decoding
        probe.open("wb").close()
        probe.unlink()
    except OSError as e:
        raise UsageError(f"{flag}: cannot write a file in {parent} ({e.strerror or e})") from e
    return out


def _write_atomically(path: Path, data: bytes, *, flag: str) -> None:
    """A temporary file beside the target, then a rename: never a half-written image."""
    tmp = _partial(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{flag} {path}: cannot write ({e.strerror or e})") from e
