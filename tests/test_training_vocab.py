from __future__ import annotations

import json
from pathlib import Path

import pytest

from memebot.artifact.vocab import N_SPECIAL, UNK, Vocab
from memebot.errors import ArtifactError


@pytest.mark.parametrize(
    "text",
    ["make all the memes|", "", "0123456789  |", "!?.,'\"|~`", "one|two|three|"],
)
def test_encode_decode_round_trip(text: str) -> None:
    v = Vocab.build(["make all the memes|", "!?.,'\"~`one two three"])
    assert v.decode(v.encode(text)) == text


def test_ordered_by_frequency_then_char() -> None:
    v = Vocab.build(["aaab", "bc"])
    assert v.chars[:3] == ("a", "b", "c")  # a:3, b:2, c:1; then the always-present chars
    assert v.id_of("a") == N_SPECIAL


def test_seed_prefix_chars_always_present() -> None:
    v = Vocab.build(["xyz"])
    for ch in "0123456789 |":
        assert v.id_of(ch) != UNK


def test_unknown_char_maps_to_unk_and_decodes_as_question_mark() -> None:
    v = Vocab.build(["abc"])
    assert v.encode("a~")[1] == UNK
    assert v.decode(v.encode("a~")) == "a?"


def test_save_load_round_trip(tmp_path: Path) -> None:
    v = Vocab.build(["hello world|"])
    v.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == v


@pytest.mark.parametrize(
    "content", ["{", json.dumps({"chars": ["ab"]}), json.dumps({"chars": ["a", "a"]}), "[]"]
)
def test_corrupt_vocab_refused(tmp_path: Path, content: str) -> None:
    p = tmp_path / "vocab.json"
    p.write_text(content)
    with pytest.raises(ArtifactError, match="vocab"):
        Vocab.load(p)
