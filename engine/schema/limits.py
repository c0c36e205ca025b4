"""The API's names and limits, one source each: sizes, the routes' paths and the headers an
image response carries."""

from __future__ import annotations

from typing import Literal, get_args

from memebot.caption_format import MAX_CHARS

ResponseKind = Literal["json", "image"]
RESPONSES: tuple[ResponseKind, ...] = get_args(ResponseKind)
MAX_LEN = MAX_CHARS  # characters of `box|box|`, markers included: the longest cleaned caption
MAX_LEN_LIMIT = 200
MAX_BOXES = 8
UPLOAD_BOXES = 2  # an uploaded image gets top and bottom text unless told otherwise
MAX_START = 200
MAX_TEMPLATE = 100
MAX_N = 10
MAX_CANDIDATES = 16  # per caption: a request decodes at most MAX_N * MAX_CANDIDATES rows
MAX_BEAM_WIDTH = 16
MAX_TOP_K = 1000
MAX_TEMPERATURE = 10.0
MAX_WELL_FORMED_WEIGHT = 10.0  # well_formed is a mean log-probability per character, about -1
MAX_SEED = 2**63 - 1
SEARCH_LIMIT = 25  # Discord autocomplete shows at most 25 choices
MAX_OFFSET = 100_000  # a templates page offset (far beyond any catalog)
MAX_PATH = 4096  # PATH_MAX and NAME_MAX (bytes) on Linux: longer cannot name a file
MAX_PATH_COMPONENT = 255


# -- paths -------------------------------------------------------------------------------------

MEMES_PATH = "/v1/memes"
UPLOAD_PATH = "/v1/memes/upload"
TEMPLATES_PATH = "/v1/templates"
RELOAD_PATH = "/v1/model/reload"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
OPENAPI_PATH = "/openapi.json"
OPEN_PATHS = frozenset({HEALTH_PATH, READY_PATH, OPENAPI_PATH})  # no bearer token needed


# Image responses carry the caption in these headers.
HEADER_MODEL = "X-Memebot-Model"
HEADER_BOXES = "X-Memebot-Boxes"  # JSON list of strings
HEADER_ALT_TEXT = "X-Memebot-Alt-Text"
