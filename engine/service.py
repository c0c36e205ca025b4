"""The meme pipeline behind every front end: template lookup, batched decoding, image, render.

`MemeService` is what the HTTP app and `memebot generate` call. It owns the scheduler and the
loaded model; `reload()` loads another artifact off the event loop and swaps it atomically.
"""

from __future__ import annotations

import asyncio
import io
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from engine.catalog import Catalog, Template, fallback_template
from engine.decoding.jobs import CaptionRequest, Sampled
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from engine.lengths import borrow_for_catalog
from engine.render import placeholder, render
from engine.scheduler import Scheduler
from engine.schema import (
    UPLOAD_BOXES,
    BadRequest,
    DecodingUsed,
    MemeOptions,
    OptionsUsed,
    TemplateInfo,
    check_caption_fits,
)
from engine.tastes import TasteCache
from memebot.choices import ImageFormat
from memebot.errors import ArtifactError
from memebot.settings import Settings

MAX_UPLOAD_PIXELS = 40_000_000  # an uploaded image's decoded size (a bomb is refused before)
UPLOAD_NAME, UPLOAD_SLUG = "uploaded image", "upload"  # what replies name an upload's template


@dataclass
class MemeResult:
    template: Template
    captions: list[Sampled]
    model_version: str
    options: OptionsUsed
    image: bytes | None = None
    image_format: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def alt_text(self) -> str:
        return " / ".join(self.captions[0].boxes) if self.captions else ""


class MemeService:
    def __init__(
        self,
        settings: Settings,
        model: LoadedModel,
        catalog: Catalog | None = None,
        tastes: TasteCache | None = None,
    ):
        self.settings = settings
        self.catalog = catalog or Catalog.load()
        # Every server's taste, read from the models location as requests name servers.
        self.tastes = tastes or TasteCache(
            settings.models_dir, size=settings.taste_cache, tilt=settings.taste_tilt
        )
        self.scheduler = Scheduler(
            model, max_queue=settings.max_queue, max_rows=settings.max_batch_rows
        )
        self._images: dict[str, Image.Image] = {}
        self._reload_lock = asyncio.Lock()

    @property
    def model(self) -> LoadedModel:
        return self.scheduler.model

    async def start(self) -> None:
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()

    def resolve(self, query: str) -> Template:
        return self.catalog.lookup(query)

    async def generate(
        self,
        opts: MemeOptions,
        template: Template,
        *,
        fmt: ImageFormat | None = None,
        image: Image.Image | None = None,
    ) -> MemeResult:
        """Caption `template` (resolved by the caller) and render it unless `opts.image` is
        false: on `image` when given (an upload), else on the template's own image.
        Raises BadRequest when `start`/`max_len` cannot fit the template's boxes."""
        t0 = time.perf_counter()
        n_boxes = opts.boxes or template.box_count
        written = opts.written_boxes(n_boxes)
        if written is not None:  # a caption given as is: rendered, nothing decoded
            return await self._render(
                MemeResult(
                    template,
                    [Sampled(written, 0.0, template.slug, score=0.0)],  # nothing to score
                    self.model.version,
                    options_used(opts, n_boxes),
                ),
                opts,
                n_boxes,
                t0,
                fmt=fmt,
                image=image,
                as_written=True,
            )
        check_caption_fits(opts, n_boxes)
        model = self.model
        limit = model.max_chars  # a transformer writes at most its positions: max_len is cut
        if limit is not None and opts.max_len > limit:
            try:
                check_caption_fits(opts.model_copy(update={"max_len": limit}), n_boxes)
            except BadRequest as e:
                raise BadRequest(
                    e.field, f"{e.problem} (this model writes at most {limit} characters)"
                ) from None
        used = options_used(opts, n_boxes)
        # the server's taste: score terms for this request's pick only, and its sampling tilt
        terms, tilt = self.tastes.for_request(opts.server, model.version)
        req = CaptionRequest(
            # An upload has no template: a slug no table holds decodes with the generic slot.
            template=template.slug if image is None else "",
            n_boxes=n_boxes,
            start=used.start,
            max_len=opts.max_len,
            decoding=Decoding(**used.decoding.model_dump()),
            seed=opts.seed,
            n=opts.n,
            allow_empty_boxes=opts.allow_empty_boxes,
            n_candidates=opts.n_candidates,
            terms=terms,
            well_formed_weight=opts.well_formed_weight,
            tilt=tilt,  # engine/decoding/tilt.py
        )
        captions = await self.scheduler.submit(req, timeout=self.settings.request_timeout)
        t1 = time.perf_counter()
        result = MemeResult(
            template, captions, model.version, used, timings_ms={"decode": (t1 - t0) * 1000}
        )
        return await self._render(result, opts, n_boxes, t1, fmt=fmt, image=image)

    async def _render(
        self,
        result: MemeResult,
        opts: MemeOptions,
        n_boxes: int,
        t1: float,
        *,
        fmt: ImageFormat | None,
        image: Image.Image | None,
        as_written: bool = False,
    ) -> MemeResult:
        """Render the first caption unless `opts.image` is false. `as_written`: the boxes keep
        the caption's case (a caption the user wrote), not the template's capitals."""
        if opts.image:
            fmt = fmt or opts.format or self.settings.image_format
            base = image if image is not None else await self.image_for(result.template)
            layout = result.template.layout(n_boxes)
            if as_written:
                layout = [replace(b, style="as-is") for b in layout]
            data, _ = await asyncio.to_thread(
                render,
                image=base,
                boxes=layout,
                texts=result.captions[0].boxes,
                fmt=fmt,
                max_width=self.settings.max_width,
            )
            result.image, result.image_format = data, fmt
            result.timings_ms["render"] = (time.perf_counter() - t1) * 1000
        return result

    async def generate_on_upload(
        self, opts: MemeOptions, data: bytes, *, fmt: ImageFormat | None = None
    ) -> MemeResult:
        """Caption an uploaded image with the model's "any template" slot, top/bottom text."""
        image = await asyncio.to_thread(decode_upload, data)
        n_boxes = opts.boxes or UPLOAD_BOXES
        template = replace(fallback_template(UPLOAD_NAME, n_boxes), slug=UPLOAD_SLUG)
        return await self.generate(opts, template, fmt=fmt, image=image)

    async def image_for(self, template: Template) -> Image.Image:
        """Local directory, then the download cache, then the URL (once); else a placeholder.
        A missing image never fails a request."""
        if template.slug not in self._images:
            self._images[template.slug] = await asyncio.to_thread(self._load_image, template)
        return self._images[template.slug]

    def _load_image(self, template: Template) -> Image.Image:
        candidates: list[Path] = []
        if template.image:
            candidates += [
                self.settings.images_dir / template.image,
                self.settings.cache_dir / "images" / template.image,
            ]
        for path in candidates:
            try:
                with Image.open(path) as im:
                    im.load()
                    return im.copy()
            except (OSError, ValueError):
                continue
        if template.image and template.image_url and self.settings.download_images:
            dest = self.settings.cache_dir / "images" / template.image
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with urllib.request.urlopen(template.image_url, timeout=5) as r:
                    dest.write_bytes(r.read())
                with Image.open(dest) as im:
                    im.load()
                    return im.copy()
            except (OSError, ValueError):
                dest.unlink(missing_ok=True)
        return placeholder(name=template.name)

    async def reload(self, path: Path) -> LoadedModel:
        """Load and verify another artifact, then swap; a bad one raises and changes nothing."""
        async with self._reload_lock:
            try:
                model = await asyncio.to_thread(
                    load_engine_model, self.settings, path, catalog=self.catalog
                )
            except OSError as e:  # a name too long, a permission, a directory gone mid-load...
                raise ArtifactError(f"{path}: {e.strerror or e}") from e
            self.scheduler.swap_model(model)
            return model


def load_engine_model(
    settings: Settings, path: Path, *, warm: bool = True, catalog: Catalog | None = None
) -> LoadedModel:
    """An artifact loaded with the engine's decoding settings (start-up and reloads alike).
    `warm`: prepare the step for MEMEBOT_MAX_BATCH rows before serving (the tf decoder
    compiles its programs then, not during requests; `memebot generate` skips it).
    Templates of `catalog` (default: the shipped one) the model has no box lengths of borrow
    them from templates laid out alike (engine/lengths.py)."""
    model = load_model(
        path,
        decoder=settings.decoder,
        threads=settings.decode_threads,
        crowd_weight=settings.crowd_weight,
    )
    model.templates = borrow_for_catalog(model.templates, catalog or Catalog.load())
    if warm:
        model.warm(settings.max_batch_rows)
    return model


def load_service(
    settings: Settings, model_path: Path | None = None, *, warm: bool = True
) -> MemeService:
    catalog = Catalog.load()  # one catalog for the service and the lengths its model borrows
    model = load_engine_model(
        settings, model_path or settings.model_dir, warm=warm, catalog=catalog
    )
    return MemeService(settings, model, catalog)


def options_used(opts: MemeOptions, n_boxes: int) -> OptionsUsed:
    """The options a caption is made with, every default filled in (echoed in replies)."""
    return OptionsUsed(
        boxes=n_boxes,
        start=opts.used_start,
        max_len=opts.max_len,
        seed=opts.seed,
        n=opts.n,
        n_candidates=candidates_used(opts),
        allow_empty_boxes=opts.allow_empty_boxes,
        server=opts.server,
        well_formed_weight=opts.well_formed_weight,
        decoding=DecodingUsed(
            method=opts.decoding,
            min_score=opts.used_min_score,
            temperature=opts.temperature,
            top_k=opts.top_k,
            top_p=opts.top_p,
            beam_width=opts.beam_width,
        ),
    )


def candidates_used(opts: MemeOptions) -> int:
    """Candidates a caption is chosen from: greedy writes one (its rows would be alike), beam
    draws among its final beams (up to beam_width), any other method n_candidates."""
    if opts.decoding == "greedy":
        return 1
    return opts.beam_width if opts.decoding == "beam" else opts.n_candidates


def template_info(t: Template) -> TemplateInfo:
    return TemplateInfo.model_validate(t.to_json())


def decode_upload(data: bytes) -> Image.Image:
    """An uploaded file as a loaded RGB(A) image, or BadRequest naming the `image` part."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_UPLOAD_PIXELS:
                raise BadRequest(
                    "image",
                    status=400,
                    problem=f"{im.width}x{im.height} pixels: at most {MAX_UPLOAD_PIXELS:,} allowed",
                )
            im.load()
            return im.convert("RGBA" if "A" in im.getbands() else "RGB")
    except Image.DecompressionBombError as e:
        raise BadRequest(
            "image", status=400, problem=f"refused as a decompression bomb ({e})"
        ) from e
    except UnidentifiedImageError as e:
        raise BadRequest(
            "image", status=415, problem="not an image Pillow can read (jpeg, png, webp, gif...)"
        ) from e
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt pixel data
        raise BadRequest("image", status=400, problem=f"unreadable image ({e})") from e
