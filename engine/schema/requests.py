"""The request models (POST /v1/memes, the upload's options, GET /v1/templates, POST
/v1/model/reload) and the caption rule that needs the template's box count."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from engine.schema.errors import BadRequest, parse
from engine.schema.limits import (
    MAX_BEAM_WIDTH,
    MAX_BOXES,
    MAX_CANDIDATES,
    MAX_LEN,
    MAX_LEN_LIMIT,
    MAX_N,
    MAX_OFFSET,
    MAX_PATH,
    MAX_PATH_COMPONENT,
    MAX_SEED,
    MAX_START,
    MAX_TEMPERATURE,
    MAX_TEMPLATE,
    MAX_TOP_K,
    MAX_WELL_FORMED_WEIGHT,
    SEARCH_LIMIT,
    UPLOAD_BOXES,
    ResponseKind,
)
from memebot.caption_format import BOX_END
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


def parse_meme_request(body: Any) -> MemeRequest:
    return parse(MemeRequest, body)
