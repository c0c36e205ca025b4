"""The response models of every route."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from memebot.choices import ImageFormat
from memebot.decoding import Method


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
