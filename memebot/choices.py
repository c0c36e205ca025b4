"""Names that settings, the engine's API and the bot share: one `Literal` each, the tuples of
its values built from it (for checks and messages), and the Discord choices built from those.

A name is added here once; mypy then checks every `match` over it for exhaustiveness (the bot's
styles, bot/memes.py), and every list a user sees (`--help`, /openapi.json, a slash command's
choices, docs/SETTINGS.md's table) is read off the tuple.
"""

from __future__ import annotations

from typing import Literal, get_args

# What runs a decoding step (MEMEBOT_DECODER): the compiled kernel, numpy, TensorFlow (tf: on the
# GPU if any), or auto (tf where TensorFlow sees a GPU, else the kernel where built, else numpy).
Decoder = Literal["auto", "kernel", "numpy", "tf"]
DECODERS: tuple[Decoder, ...] = get_args(Decoder)

# Rendered image formats (MEMEBOT_IMAGE_FORMAT, the API's `format`).
ImageFormat = Literal["jpeg", "png", "webp"]
FORMATS: tuple[ImageFormat, ...] = get_args(ImageFormat)

# The caption styles /meme offers (each is a set of engine options: bot/memes.py) and a guild's
# default style (/settings).
Style = Literal["natural", "calibrated", "threshold", "beam", "greedy", "creative"]
STYLES: tuple[Style, ...] = get_args(Style)
DEFAULT_STYLE: Style = "natural"

# The content filter's levels (memebot/filtering.py), a guild's `/settings content_filter`.
FilterLevel = Literal["off", "standard", "strict"]
FILTER_LEVELS: tuple[FilterLevel, ...] = get_args(FilterLevel)
DEFAULT_FILTER_LEVEL: FilterLevel = "standard"

# A retraining run's mode (/retrain, `memebot retrain --mode`): finetune continues from the
# active model for minutes; full trains from scratch.
RunMode = Literal["finetune", "full"]
RUN_MODES: tuple[RunMode, ...] = get_args(RunMode)
DEFAULT_RUN_MODE: RunMode = "finetune"

# What a retraining run changes: base, the shared generator (the bot owner's); taste, one
# server's taste, fitted from that server's votes alone.
RunKind = Literal["base", "taste"]
RUN_KINDS: tuple[RunKind, ...] = get_args(RunKind)
