"""The meme pipeline behind every front end: template lookup, batched decoding, image, render.

`MemeService` is what the HTTP app and `memebot generate` call. It owns the scheduler and the
loaded model; `reload()` loads another artifact off the event loop and swaps it atomically.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from engine.catalog import Catalog, Template
from engine.decoding.jobs import CaptionRequest, Sampled
from engine.decoding.loader import load_model
from engine.decoding.model import LoadedModel
from engine.decoding.pickers import Decoding
from engine.render import placeholder, render
from engine.scheduler import Scheduler
from memebot.settings import Settings


@dataclass(frozen=True)
class MemeParams:
    template: str
    boxes: int | None = None  # None: the template's box count
    start: str = ""
    max_len: int = 82
    decoding: Decoding = field(default_factory=Decoding)
    seed: int | None = None
    n: int = 1
    allow_empty_boxes: bool = False
    render: bool = True
    fmt: str | None = None  # None: settings.image_format


@dataclass
class MemeResult:
    template: Template
    captions: list[Sampled]
    model_version: str
    params: MemeParams
    image: bytes | None = None
    image_format: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def alt_text(self) -> str:
        return " / ".join(self.captions[0].boxes) if self.captions else ""


class MemeService:
    def __init__(self, settings: Settings, model: LoadedModel, catalog: Catalog | None = None):
        self.settings = settings
        self.catalog = catalog or Catalog.load()
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

    async def generate(self, p: MemeParams) -> MemeResult:
        t0 = time.perf_counter()
        template = self.resolve(p.template)
        n_boxes = p.boxes or template.box_count
        model = self.model
        req = CaptionRequest(
            template=template.slug,
            n_boxes=n_boxes,
            start=p.start.lower(),
            max_len=p.max_len,
            decoding=p.decoding,
            seed=p.seed,
            n=p.n,
            allow_empty_boxes=p.allow_empty_boxes,
        )
        captions = await self.scheduler.submit(req, timeout=self.settings.request_timeout)
        t1 = time.perf_counter()
        result = MemeResult(
            template, captions, model.version, p, timings_ms={"decode": (t1 - t0) * 1000}
        )
        if p.render:
            fmt = p.fmt or self.settings.image_format
            image = await self.image_for(template)
            data, _ = await asyncio.to_thread(
                render,
                image=image,
                boxes=template.layout(n_boxes),
                texts=captions[0].boxes,
                fmt=fmt,
                max_width=self.settings.max_width,
            )
            result.image, result.image_format = data, fmt
            result.timings_ms["render"] = (time.perf_counter() - t1) * 1000
        return result

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
            model = await asyncio.to_thread(load_engine_model, self.settings, path)
            self.scheduler.swap_model(model)
            return model


def load_engine_model(settings: Settings, path: Path) -> LoadedModel:
    """An artifact loaded with the engine's decoding settings (start-up and reloads alike)."""
    return load_model(path, decoder=settings.decoder, threads=settings.decode_threads)


def load_service(settings: Settings, model_path: Path | None = None) -> MemeService:
    return MemeService(settings, load_engine_model(settings, model_path or settings.model_dir))


def params_summary(p: MemeParams, n_boxes: int) -> dict[str, Any]:
    d = p.decoding
    return {
        "boxes": n_boxes,
        "start": p.start,
        "max_len": p.max_len,
        "seed": p.seed,
        "n": p.n,
        "allow_empty_boxes": p.allow_empty_boxes,
        "decoding": {
            "method": d.method,
            "min_score": d.min_score,
            "temperature": d.temperature,
            "top_k": d.top_k,
            "top_p": d.top_p,
            "beam_width": d.beam_width,
        },
    }
