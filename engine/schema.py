"""The engine's HTTP API as data: request and response models, limits and defaults.

The one source for the API's names, defaults and limits: the engine validates with these models,
/openapi.json is generated from them (engine/openapi.py), `memebot generate` builds its flags
from them (engine/flags.py), and the engine's client (engine/client.py: the bot, promotion)
speaks them. Light on purpose:
pydantic only, no ML code, no Pillow, no aiohttp (the bot imports it).

Errors name the field: `parse`/`parse_meme_request` raise `BadRequest(field, problem)`, answered
as 400 `{"error": "<field>: <problem>", "field": "<field>"}` (the `ErrorBody` model). Built
directly (`MemeRequest(...)`, as a client does), a model raises pydantic's ValidationError for a
field out of range and BadRequest for a rule between fields; `to_body()` gives the JSON to send.
The rule that needs the template's box count (`check_caption_fits`) runs on the engine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from memebot.caption_format import BOX_END, MAX_CHARS
from memebot.choices import ImageFormat
from memebot.decoding import (
    BEAM_MIN_SCORE,
    DEFAULT_BEAM_WIDTH,
    DEFAULT_CANDIDATES,
    DEFAULT_METHOD,
    MIN_SCORE,
    Method,
    default_min_score,
)

# -- names and limits (one source each) ------------------------------------------------------

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


# -- errors ------------------------------------------------------------------------------------


class BadRequest(Exception):
    """A request the API refuses: `field` names the part that is wrong ("body" for all of it);
    `status` is the HTTP answer (400, or 406/413/415 where those say it better)."""

    def __init__(self, field: str, problem: str, *, status: int = 400):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.status = status


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer's body."""

    error: str = Field(description="what is wrong, starting with the field's name when one is")
    field: str | None = Field(None, description="the request field (or part) that is wrong")
    serving: str | None = Field(None, description="reload refused: the model still serving")


def _printable(v: str) -> str:
    if any(not 32 <= ord(c) < 127 for c in v):
        raise ValueError("only printable ASCII characters are allowed")
    return v


PRINTABLE_PATTERN = "^[ -~]*$"  # the rule `_printable` enforces, as /openapi.json states it
Ascii = Annotated[
    str, AfterValidator(_printable), Field(json_schema_extra={"pattern": PRINTABLE_PATTERN})
]


def _file_path(v: str) -> str:
    if "\x00" in v:
        raise ValueError("must not contain a NUL character")
    longest = max(len(part.encode("utf-8", "surrogatepass")) for part in v.split("/"))
    if longest > MAX_PATH_COMPONENT:
        raise ValueError(
            f"has a component of {longest} bytes; a file name is at most {MAX_PATH_COMPONENT}"
        )
    return v


# -- requests ----------------------------------------------------------------------------------


class MemeOptions(BaseModel):
    """Everything about a caption but the template (the body of an upload's `options` part)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    boxes: int | None = Field(
        None, ge=1, le=MAX_BOXES, description="number of text boxes (default: the template's)"
    )
    start: Ascii = Field(
        "",
        max_length=MAX_START,
        description="the caption starts with this text (lowercased: the model writes lowercase); "
        f"'{BOX_END}' ends a box. Must leave room for the remaining boxes within max_len",
    )
    text: Ascii | None = Field(
        None,
        max_length=MAX_LEN_LIMIT,
        description=f"a caption to render exactly as written, case kept ('{BOX_END}' between "
        "boxes; fewer boxes than the template leaves the rest empty): nothing is decoded, and "
        "start and the decoding options are ignored",
    )
    max_len: int = Field(
        MAX_LEN,
        ge=2,
        le=MAX_LEN_LIMIT,
        description=f"characters of the whole caption, one '{BOX_END}' per box included "
        "(at least 2 per box)",
    )
    decoding: Method = Field(
        DEFAULT_METHOD,
        description="natural: nucleus sampling (all of a word's first character, 0.9 of the "
        "mass inside words) with box lengths drawn from the template's real captions; "
        "calibrated: the article's threshold rule with those lengths; threshold: the rule as "
        "written; threshold-weighted, beam, "
        "greedy, temperature, top-k, top-p, top-k-top-p (docs/ENGINE.md)",
    )
    min_score: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description=f"threshold family: r ~ U[min_score, 1] (default {MIN_SCORE}); "
        f"beam: candidates p >= min_score * top (default {BEAM_MIN_SCORE})",
    )
    temperature: float = Field(
        1.0,
        gt=0.0,
        le=MAX_TEMPERATURE,
        description="temperature, top-k, top-p: log-probabilities divided by this",
    )
    top_k: int = Field(0, ge=0, le=MAX_TOP_K, description="top-k: characters kept (0 = all)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="top-p: probability mass kept")
    beam_width: int = Field(
        DEFAULT_BEAM_WIDTH, ge=1, le=MAX_BEAM_WIDTH, description="beam: texts kept per step"
    )
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="same seed, same caption")
    n: int = Field(
        1, ge=1, le=MAX_N, description="captions to return, best first (the first is rendered)"
    )
    n_candidates: int = Field(
        DEFAULT_CANDIDATES,
        ge=1,
        le=MAX_CANDIDATES,
        description="candidates written per caption in the same batch; the one with the best "
        "score is returned (score, score_parts). beam: its final beams are the candidates "
        "(beam_width), drawn by score per seed; greedy: always 1",
    )
    well_formed_weight: float | None = Field(
        None,
        ge=0.0,
        le=MAX_WELL_FORMED_WEIGHT,
        description="the weight of well_formed (the model's mean log-probability per "
        "character) in the pick among candidates, beside the crowd's and the server's taste; "
        "0 leaves the pick to those (default: the model's scorer, 1)",
    )
    allow_empty_boxes: bool = Field(False, description="a box may be left empty")
    server: str | None = Field(
        None,
        pattern=r"^[0-9]{1,20}$",
        description="the Discord server (guild) id the meme is for, as a string of digits "
        "(a snowflake does not fit a JSON number everywhere): the pick among the candidates "
        "uses that server's taste, if it has one (docs/ENGINE.md); none: the default taste",
    )
    image: bool = Field(True, description="render the image")
    format: ImageFormat | None = Field(
        None,
        description="image format (default: the engine's MEMEBOT_IMAGE_FORMAT, or the one "
        "named by an Accept: image/<format> header)",
    )
    response: ResponseKind | None = Field(
        None,
        description="json (the image base64 inside), or image (the bytes, with the caption in "
        "X-Memebot-* headers). Default: image if the Accept header asks for image/*, else json",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MemeOptions:
        if self.response == "image" and not self.image:
            raise BadRequest("image", "cannot be false when the response is the image")
        if self.boxes is not None:
            check_caption_fits(self, self.boxes)
        return self

    def written_boxes(self, n_boxes: int) -> list[str] | None:
        """`text` as one string per box (the last ones empty when it has fewer), or None
        when the caption is to be generated; BadRequest when it has more boxes than there are."""
        if self.text is None:
            return None
        parts = [p.strip() for p in self.text.split(BOX_END)]
        if len(parts) > 1 and not parts[-1]:  # a trailing '|' closes the last box
            parts.pop()
        if len(parts) > n_boxes:
            raise BadRequest("text", f"has {len(parts)} boxes; the template has {n_boxes}")
        if not any(parts):
            raise BadRequest("text", "has no text in any box")
        return parts + [""] * (n_boxes - len(parts))

    def to_body(self) -> dict[str, Any]:
        """The JSON body (or upload `options` part) a client sends: the fields it set."""
        return self.model_dump(mode="json", exclude_unset=True)

    @property
    def used_min_score(self) -> float:
        return self.min_score if self.min_score is not None else default_min_score(self.decoding)

    @property
    def used_start(self) -> str:
        return self.start.lower()


class UploadOptions(MemeOptions):
    """The `options` part of POST /v1/memes/upload: as MemeOptions, two boxes by default."""

    boxes: int | None = Field(
        UPLOAD_BOXES, ge=1, le=MAX_BOXES, description="number of text boxes (top, bottom, ...)"
    )


class MemeRequest(MemeOptions):
    """The body of POST /v1/memes."""

    template: Ascii = Field(
        min_length=1,
        max_length=MAX_TEMPLATE,
        description="slug, name, alias or Imgflip id (see GET /v1/templates)",
        # printable ASCII with something besides spaces (`_template_not_blank`)
        json_schema_extra={"pattern": "^[ -~]*[!-~][ -~]*$"},
    )

    @model_validator(mode="after")
    def _template_not_blank(self) -> MemeRequest:
        if not self.template.strip():
            raise BadRequest("template", "required: a slug, name, alias or Imgflip id")
        return self


def check_caption_fits(opts: MemeOptions, n_boxes: int) -> None:
    """The caption rule: every box closed and non-empty (unless allowed) within max_len, the
    start text included. Called with the box count once the template is known."""
    per_box = 1 if opts.allow_empty_boxes else 2  # a character and its marker
    if opts.max_len < per_box * n_boxes:
        raise BadRequest(
            "max_len", f"must leave room for {n_boxes} boxes (at least {per_box * n_boxes})"
        )
    parts = opts.start.split(BOX_END)
    closed, open_part = parts[:-1], parts[-1]
    if len(closed) > n_boxes or (len(closed) == n_boxes and open_part):
        raise BadRequest("start", f"has more than {n_boxes} boxes ('{BOX_END}' ends a box)")
    if not opts.allow_empty_boxes and any(not p for p in closed):
        raise BadRequest("start", "has an empty box (set allow_empty_boxes to allow it)")
    left = n_boxes - len(closed)  # boxes still open, the current one included
    need = 0 if left == 0 else (1 if open_part else per_box) + per_box * (left - 1)
    if len(opts.start) + need > opts.max_len:
        raise BadRequest(
            "start",
            f"{len(opts.start)} characters leave too little room to finish {n_boxes} box(es) "
            f"within max_len {opts.max_len}",
        )


class TemplateQuery(BaseModel):
    """GET /v1/templates query string."""

    model_config = ConfigDict(extra="ignore")

    q: str = Field("", max_length=MAX_TEMPLATE, description="prefix or substring; blank: first")
    limit: int = Field(SEARCH_LIMIT, ge=1, le=SEARCH_LIMIT, description="templates returned")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="matches skipped (paging)")


class ReloadRequest(BaseModel):
    """The body of POST /v1/model/reload."""

    model_config = ConfigDict(extra="forbid", strict=True)

    path: Annotated[str, AfterValidator(_file_path)] = Field(
        min_length=1,
        max_length=MAX_PATH,
        description="artifact directory on the engine's machine (no NUL; each name at most "
        f"{MAX_PATH_COMPONENT} bytes of UTF-8)",
        # The byte rule as characters: 63 of any script fit in 255 bytes of UTF-8.
        json_schema_extra={"pattern": "^[^\\x00/]{0,63}(/[^\\x00/]{0,63})*$"},
    )


# -- responses ---------------------------------------------------------------------------------


class TemplateInfo(BaseModel):
    slug: str
    name: str
    imgflip_id: int | None
    aliases: list[str]
    box_count: int
    image_url: str | None


class TemplatesResponse(BaseModel):
    templates: list[TemplateInfo]
    total: int = Field(0, ge=0, description="templates matching the query, on every page")


class CaptionResult(BaseModel):
    boxes: list[str] = Field(description="one text per box")
    logprob: float = Field(description="sum of the characters' log-probabilities")
    score: float = Field(
        description="what the caption was chosen by, higher is better: the weighted sum of "
        "score_parts"
    )
    score_parts: dict[str, float] = Field(
        description="each score term, unweighted; well_formed: the model's mean "
        "log-probability per generated character"
    )


class DecodingUsed(BaseModel):
    method: Method
    min_score: float
    temperature: float
    top_k: int
    top_p: float
    beam_width: int


class OptionsUsed(BaseModel):
    """The options the caption was made with, defaults filled in."""

    boxes: int
    start: str = Field(description="the start text as used (lowercased)")
    max_len: int
    seed: int | None
    n: int
    n_candidates: int
    allow_empty_boxes: bool
    server: str | None = Field(None, description="the server whose taste picked, if named")
    well_formed_weight: float | None = Field(
        None, description="the weight of well_formed in the pick, if the request set one"
    )
    decoding: DecodingUsed


class ImagePayload(BaseModel):
    format: ImageFormat
    alt_text: str = Field(description="the boxes joined with ' / '")
    data_base64: str


class MemeResponse(BaseModel):
    """200 from POST /v1/memes and /v1/memes/upload (JSON)."""

    template: TemplateInfo
    boxes: list[str] = Field(description="the first caption's boxes")
    logprob: float
    score: float = Field(description="the first caption's score")
    score_parts: dict[str, float] = Field(description="the first caption's score terms")
    captions: list[CaptionResult]
    options: OptionsUsed
    model_version: str
    timings_ms: dict[str, float]
    image: ImagePayload | None


class ReloadResponse(BaseModel):
    model_version: str
    previous: str


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ready"]
    model_version: str
    decoder: str = Field(
        description="what runs a decoding step: kernel, numpy, keras (seed-cnn) or "
        "tf:<device> (the tf decoder, e.g. tf:GPU:0 or tf:CPU:0)"
    )


# Image responses carry the caption in these headers.
HEADER_MODEL = "X-Memebot-Model"
HEADER_BOXES = "X-Memebot-Boxes"  # JSON list of strings
HEADER_ALT_TEXT = "X-Memebot-Alt-Text"


# -- parsing -----------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: Any) -> M:
    """Validate a decoded JSON body; the first problem raises BadRequest naming its field."""
    if not isinstance(body, Mapping):
        raise BadRequest("body", "expected a JSON object")
    try:
        return model.model_validate(_integral_floats(model, body))
    except ValidationError as e:
        raise bad_request(e, known=sorted(model.model_fields)) from None


@cache
def _int_fields(model: type[BaseModel]) -> frozenset[str]:
    def has_int(ann: Any) -> bool:
        return ann is int or any(has_int(a) for a in get_args(ann))

    return frozenset(n for n, f in model.model_fields.items() if has_int(f.annotation))


def _integral_floats(model: type[BaseModel], body: Mapping[str, Any]) -> Mapping[str, Any]:
    """JSON Schema's integer is any number without a fraction, so `8.0` is one: it becomes 8
    for the strict models (a fraction, `8.5`, is still refused)."""
    ints = _int_fields(model)
    fix = {
        k: int(v)
        for k, v in body.items()
        if k in ints and type(v) is float and v.is_integer() and abs(v) < 2**64
    }
    return {**body, **fix} if fix else body


def parse_json(model: type[M], raw: bytes | str) -> M:
    """As `parse`, from JSON text (the body named "body" when it is not JSON)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise BadRequest("body", f"not valid JSON ({_short(e)})") from None
    return parse(model, body)


def parse_meme_request(body: Any) -> MemeRequest:
    return parse(MemeRequest, body)


def bad_request(e: ValidationError, *, known: list[str] | None = None) -> BadRequest:
    err = e.errors(include_url=False)[0]
    field = ".".join(str(p) for p in err["loc"]) or "body"
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        problem = "unknown field" + (f" (known: {', '.join(known)})" if known else "")
    elif kind == "missing":
        problem = "required"
    elif kind == "literal_error":
        problem = f"got {err['input']!r}; choose one of {ctx.get('expected', '')}"
    elif kind in ("int_type", "int_from_float", "int_parsing"):
        problem = f"expected an integer, got {_type_name(err['input'])}"
    elif kind in ("float_type", "float_parsing", "finite_number"):
        problem = f"expected a number, got {_type_name(err['input'])}"
    elif kind in ("bool_type", "bool_parsing"):
        problem = f"expected true or false, got {_type_name(err['input'])}"
    elif kind == "string_type":
        problem = f"expected a string, got {_type_name(err['input'])}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        problem = f"{_bound(kind, ctx)}, got {err['input']!r}"
    elif kind == "string_too_long":
        problem = f"at most {ctx['max_length']} characters, got {len(err['input'])}"
    elif kind == "string_too_short":
        problem = "required: must not be empty"
    elif kind == "value_error":
        problem = str(ctx.get("error", err["msg"]))
    else:
        problem = err["msg"]
    return BadRequest(field, problem)


def _bound(kind: str, ctx: Mapping[str, Any]) -> str:
    return {
        "greater_than": f"must be greater than {ctx.get('gt')}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "less_than": f"must be less than {ctx.get('lt')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
    }[kind]


def _type_name(v: Any) -> str:
    return {
        bool: "true/false",
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(v), type(v).__name__)


def _short(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return str(e)[:200]
