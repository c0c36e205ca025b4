"""The API schema by itself (no model, no server): every field's check names the field, the
caption rule against a box count, the OpenAPI document and the CLI flags made from it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import pytest

from engine import schema
from engine.flags import add_model_flags, flag_problem, given
from engine.openapi import openapi_document
from engine.schema import (
    BadRequest,
    MemeOptions,
    MemeRequest,
    UploadOptions,
    check_caption_fits,
    parse,
    parse_json,
    parse_meme_request,
)
from memebot import choices, decoding

T = {"template": "drake"}


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({}, "template", "required"),
        ({"template": ""}, "template", "empty"),
        ({"template": "   "}, "template", "required"),
        ({"template": 5}, "template", "expected a string"),
        ({"template": "x" * 101}, "template", "at most 100"),
        ({**T, "boxes": 0}, "boxes", "at least 1"),
        ({**T, "boxes": 9}, "boxes", "at most 8"),
        ({**T, "boxes": "2"}, "boxes", "expected an integer"),
        ({**T, "boxes": 2.5}, "boxes", "expected an integer"),
        ({**T, "boxes": True}, "boxes", "expected an integer"),
        ({**T, "start": "caf\u00e9"}, "start", "printable ASCII"),
        ({**T, "start": "x" * 201}, "start", "at most 200"),
        ({**T, "max_len": 1}, "max_len", "at least 2"),
        ({**T, "max_len": 201}, "max_len", "at most 200"),
        ({**T, "boxes": 3, "max_len": 5}, "max_len", "room for 3 boxes"),
        ({**T, "decoding": "sideways"}, "decoding", "choose one of"),
        ({**T, "min_score": 0}, "min_score", "greater than 0"),
        ({**T, "min_score": 1.5}, "min_score", "at most 1"),
        ({**T, "temperature": -1}, "temperature", "greater than 0"),
        ({**T, "temperature": float("nan")}, "temperature", "nan"),
        ({**T, "temperature": float("inf")}, "temperature", "inf"),
        ({**T, "top_k": -1}, "top_k", "at least 0"),
        ({**T, "top_p": 0}, "top_p", "greater than 0"),
        ({**T, "beam_width": 17}, "beam_width", "at most 16"),
        ({**T, "seed": -1}, "seed", "at least 0"),
        ({**T, "seed": 2**63}, "seed", "at most"),
        ({**T, "n": 11}, "n", "at most 10"),
        ({**T, "n_candidates": 0}, "n_candidates", "at least 1"),
        ({**T, "n_candidates": 17}, "n_candidates", "at most 16"),
        ({**T, "n_candidates": 2.5}, "n_candidates", "expected an integer"),
        ({**T, "well_formed_weight": -0.1}, "well_formed_weight", "at least 0"),
        ({**T, "well_formed_weight": 10.5}, "well_formed_weight", "at most 10"),
        ({**T, "well_formed_weight": float("nan")}, "well_formed_weight", "nan"),
        ({**T, "allow_empty_boxes": "yes"}, "allow_empty_boxes", "true or false"),
        ({**T, "image": 1}, "image", "true or false"),
        ({**T, "format": "gif"}, "format", "jpeg"),
        ({**T, "response": "xml"}, "response", "json"),
        ({**T, "image": False, "response": "image"}, "image", "cannot be false"),
        ({**T, "server": 123}, "server", "string"),  # a snowflake is a string of digits
        ({**T, "server": "12a"}, "server", "pattern"),
        ({**T, "server": "1" * 21}, "server", "pattern"),
        ({**T, "colour": "red"}, "colour", "unknown field"),
        ({**T, "boxes": 2, "start": "y" * 81}, "start", "too little room"),
        ([1, 2], "body", "JSON object"),
        ("drake", "body", "JSON object"),
    ],
)
def test_bad_bodies_name_the_field(body: Any, field: str, needle: str) -> None:
    with pytest.raises(BadRequest) as e:
        parse_meme_request(body)
    assert e.value.field == field and e.value.status == 400
    assert str(e.value).startswith(f"{field}: ") and needle in str(e.value), str(e.value)


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        (T, {"boxes": None, "max_len": 82, "decoding": "calibrated", "used_min_score": 0.1}),
        (T, {"n": 1, "n_candidates": decoding.DEFAULT_CANDIDATES}),
        ({**T, "n_candidates": 16, "n": 10}, {"n_candidates": 16, "n": 10}),
        ({**T, "decoding": "beam"}, {"used_min_score": 0.0001, "beam_width": 5}),
        ({**T, "decoding": "beam", "min_score": 0.5}, {"used_min_score": 0.5}),
        ({**T, "temperature": 2}, {"temperature": 2.0}),  # an integer is a number
        ({**T, "start": "When|I"}, {"start": "When|I", "used_start": "when|i"}),
        ({**T, "seed": 2**63 - 1, "n": 10}, {"seed": 2**63 - 1, "n": 10}),
        ({**T, "format": "webp", "response": "image"}, {"format": "webp", "response": "image"}),
        (T, {"server": None}),
        (T, {"well_formed_weight": None}),
        ({**T, "well_formed_weight": 0}, {"well_formed_weight": 0.0}),
        ({**T, "well_formed_weight": 0.25}, {"well_formed_weight": 0.25}),
        ({**T, "server": "1234567890123456789"}, {"server": "1234567890123456789"}),
    ],
)
def test_good_bodies_and_their_defaults(body: dict[str, Any], expect: dict[str, Any]) -> None:
    req = parse_meme_request(body)
    for k, v in expect.items():
        assert getattr(req, k) == v, k


def test_client_bodies_round_trip() -> None:
    req = MemeRequest(template="drake", seed=3, decoding="beam", temperature=2)
    assert req.to_body() == {"template": "drake", "seed": 3, "decoding": "beam", "temperature": 2}
    assert parse_meme_request(req.to_body()) == req
    assert UploadOptions(n=2).to_body() == {"n": 2}
    with pytest.raises(BadRequest):  # a client cannot build a body the engine would refuse
        MemeRequest(template="drake", image=False, response="image")


def test_upload_options() -> None:
    assert UploadOptions().boxes == 2 and UploadOptions().image
    with pytest.raises(BadRequest) as e:
        parse(UploadOptions, {"template": "drake"})
    assert e.value.field == "template"
    with pytest.raises(BadRequest) as e:
        parse_json(UploadOptions, "{oops")
    assert e.value.field == "body"
    with pytest.raises(BadRequest) as e:
        parse_json(UploadOptions, "[" * 30_000)
    assert e.value.field == "body" and "nested" in str(e.value)


@pytest.mark.parametrize(
    ("opts", "n_boxes", "field"),
    [
        ({"start": "y" * 81}, 2, "start"),  # 81 + '|' + 'c|' = 84 > 82
        ({"start": "y" * 79}, 2, None),  # 79 + '|' + 'c|' = 82
        ({"start": "y" * 80}, 1, None),  # 80 + '|'
        ({"start": "y" * 81}, 1, None),
        ({"start": "y" * 82}, 1, "start"),
        ({"start": "y" * 150, "max_len": 200}, 2, None),
        ({"start": "y" * 150}, 2, "start"),
        ({"max_len": 5}, 4, "max_len"),  # expanding brain: 4 boxes need 8
        ({"max_len": 8}, 4, None),
        ({"max_len": 4, "allow_empty_boxes": True}, 4, None),
        ({"start": "a|b|c"}, 2, "start"),
        ({"start": "a|b|"}, 2, None),  # every box closed by the start itself
        ({"start": "a||"}, 2, "start"),  # an empty box
        ({"start": "a||", "allow_empty_boxes": True}, 2, None),
        ({"start": "ab|", "max_len": 4}, 2, "start"),
        ({"start": "a|", "max_len": 3}, 2, "max_len"),
        ({"start": "a|", "max_len": 4}, 2, None),
    ],
)
def test_caption_rule_against_the_box_count(
    opts: dict[str, Any], n_boxes: int, field: str | None
) -> None:
    o = MemeOptions(**opts)
    if field is None:
        check_caption_fits(o, n_boxes)
    else:
        with pytest.raises(BadRequest) as e:
            check_caption_fits(o, n_boxes)
        assert e.value.field == field


def test_openapi_is_the_models() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    assert set(schemas["MemeRequest"]["properties"]) == set(MemeRequest.model_fields)
    assert schemas["MemeRequest"]["additionalProperties"] is False
    assert schemas["MemeRequest"]["properties"]["decoding"]["enum"] == list(decoding.METHODS)
    assert schemas["MemeRequest"]["properties"]["max_len"]["default"] == schema.MAX_LEN
    candidates = schemas["MemeRequest"]["properties"]["n_candidates"]
    assert (candidates["default"], candidates["minimum"], candidates["maximum"]) == (
        decoding.DEFAULT_CANDIDATES,
        1,
        schema.MAX_CANDIDATES,
    )
    weight = schemas["MemeRequest"]["properties"]["well_formed_weight"]
    assert {"type": "number", "minimum": 0.0, "maximum": schema.MAX_WELL_FORMED_WEIGHT} in weight[
        "anyOf"
    ]
    assert {"score", "score_parts"} <= set(schemas["CaptionResult"]["required"])
    assert "template" not in schemas["UploadOptions"]["properties"]
    assert schemas["UploadOptions"]["properties"]["boxes"]["default"] == 2
    paths = {
        schema.MEMES_PATH,
        schema.UPLOAD_PATH,
        schema.TEMPLATES_PATH,
        schema.RELOAD_PATH,
        schema.HEALTH_PATH,
        schema.READY_PATH,
        schema.METRICS_PATH,
        schema.OPENAPI_PATH,
    }
    assert set(doc["paths"]) == paths
    refs = {v for v in _walk(doc) if isinstance(v, str) and v.startswith("#/components/")}
    assert {r.rsplit("/", 1)[1] for r in refs} <= set(schemas)  # every $ref resolves


def _walk(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _walk(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _walk(v)]
    return [obj]


def test_one_source_for_each_default() -> None:
    from engine import render
    from engine.decoding import jobs, loader, model, pickers
    from memebot.errors import UsageError
    from memebot.settings import Settings
    from training import cleaning

    assert pickers.METHODS is decoding.METHODS and render.FORMATS is choices.FORMATS
    assert cleaning.MAX_CHARS == schema.MAX_LEN == jobs.CaptionRequest("t", 1).max_len
    d = pickers.Decoding()
    assert d.method == schema.DEFAULT_METHOD == schema.MemeOptions().decoding
    assert d.beam_width == schema.DEFAULT_BEAM_WIDTH == schema.MemeOptions().beam_width
    assert schema.MemeOptions().n_candidates == decoding.DEFAULT_CANDIDATES
    assert d.min_score == schema.MIN_SCORE == schema.MemeOptions().used_min_score
    beam = pickers.Decoding("beam")
    assert beam.min_score == beam.score == schema.BEAM_MIN_SCORE
    assert beam.min_score == schema.MemeOptions(decoding="beam").used_min_score
    assert pickers.Decoding("beam", min_score=0.05).min_score == 0.05  # an explicit value stays
    assert pickers.Decoding("greedy").min_score == schema.MIN_SCORE
    # Decoder names: one Literal in memebot.choices, used by the settings and the loaders.
    assert model.DECODERS is loader.DECODERS is choices.DECODERS
    assert choices.DECODERS == ("auto", "kernel", "numpy", "tf")
    decoder_type = Settings.model_fields["decoder"].annotation
    assert decoder_type == choices.Decoder
    with pytest.raises(UsageError, match="MEMEBOT_DECODER"):
        Settings.from_env({"MEMEBOT_DECODER": "keras"})


def test_schema_imports_no_heavy_code() -> None:
    code = (
        "import sys, engine.schema, engine.flags; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('PIL', 'aiohttp', 'numpy', 'tensorflow', 'keras', 'training')]; "
        "assert not heavy, heavy"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_model_flags(p, MemeRequest, skip=frozenset({"template", "response"}))
    return p


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["-n", "11"], "-n:"),
        (["--top-p", "0"], "--top-p:"),
        (["--max-len", "1"], "--max-len:"),
        (["--beam-width", "99"], "--beam-width:"),
        (["--n-candidates", "17"], "--n-candidates:"),
        (["--start", "caf\u00e9"], "--start:"),
        (["--boxes", "3", "--max-len", "5"], "--max-len:"),
    ],
)
def test_cli_flags_come_from_the_model_and_errors_name_them(argv: list[str], flag: str) -> None:
    args = _parser().parse_args(argv)
    with pytest.raises(BadRequest) as e:
        parse(MemeRequest, {"template": "drake", **given(args, MemeRequest)})
    assert flag_problem(e.value).startswith(flag)


def test_cli_flags_left_out_leave_the_model_defaults() -> None:
    p = _parser()
    assert parse(MemeRequest, {"template": "x", **given(p.parse_args([]), MemeRequest)}) == (
        MemeRequest(template="x")
    )
    args = p.parse_args(["--no-image", "--allow-empty-boxes", "--decoding", "beam", "-n", "3"])
    req = parse(MemeRequest, {"template": "x", **given(args, MemeRequest)})
    assert (req.image, req.allow_empty_boxes, req.decoding, req.n) == (False, True, "beam", 3)
    flags = {a for action in p._actions for a in action.option_strings}
    for name in MemeRequest.model_fields:
        if name in ("template", "response"):
            continue
        assert {f"--{name.replace('_', '-')}", f"-{name}", "--no-image"} & flags, name


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (f"/tmp/{'a' * 256}/model", "has a component of 256 bytes; a file name is at most 255"),
        (f"/tmp/{'é' * 128}", "has a component of 256 bytes"),  # bytes, not characters
        ("/tmp/a\x00b", "must not contain a NUL character"),
        ("", "required: must not be empty"),
    ],
)
def test_reload_path_no_file_can_have_is_refused_naming_path(path: str, problem: str) -> None:
    with pytest.raises(BadRequest, match=r"^path: ") as e:
        parse(schema.ReloadRequest, {"path": path})
    assert e.value.field == "path" and problem in e.value.problem
    assert parse(schema.ReloadRequest, {"path": f"/tmp/{'a' * 255}"}).path.endswith("a" * 255)


def test_integers_written_as_numbers_without_a_fraction_are_integers() -> None:
    """JSON Schema's integer (what /openapi.json says) includes 2.0: the engine agrees."""
    req = parse_meme_request({**T, "boxes": 2.0, "n": 3.0, "seed": 7.0, "max_len": 40.0})
    assert (req.boxes, req.n, req.seed, req.max_len) == (2, 3, 7, 40)
    assert type(req.boxes) is int and type(req.seed) is int
    assert parse_meme_request({**T, "min_score": 1}).min_score == 1.0
