"""A server's taste file (memebot/taste_file.py): round trip, every refusal a ScorerError
naming the file, the score's shape and type, and the active pointer written, read and
cleared atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.factories import npz_header, rewrite_npz
from memebot.errors import ScorerError
from memebot.taste_file import (
    ACTIVE_FILE,
    TASTE_BUCKETS,
    TasteScorer,
    clear_active,
    file_sha256,
    load_taste,
    read_active,
    read_pointer,
    save_taste,
    taste_dir,
    taste_file,
    write_active,
)

BASE = "char-gru-20261130T082656Z-8e67a9fe"
GUILD = 4242


def _scorer(seed: int = 0, version: int = 1) -> TasteScorer:
    w = np.random.default_rng(seed).normal(0, 0.5, TASTE_BUCKETS).astype(np.float32)
    return TasteScorer(
        w, -0.5, GUILD, BASE, version=version, n_votes=37, heldout_auc=0.71, metrics={"a": 1}
    )


def test_round_trip_small_file(tmp_path: Path) -> None:
    s = _scorer()
    path = save_taste(taste_file(tmp_path, GUILD, 1), s)
    assert path == tmp_path / "tastes" / str(GUILD) / "v1.npz"
    assert path == taste_dir(tmp_path, GUILD) / "v1.npz"
    back = load_taste(path, base_version=BASE, guild_id=GUILD)
    texts = ["me|my homework|", "when you see it|", "aaaand it's gone|"]
    assert np.array_equal(back.score(texts), s.score(texts, "x"))
    assert (back.guild_id, back.version, back.n_votes, back.heldout_auc) == (GUILD, 1, 37, 0.71)
    assert back.base_version == BASE and back.bias == -0.5 and back.metrics == {"a": 1}
    assert path.stat().st_size < 12_000  # 4096 float16 weights: a few KB
    assert [p.name for p in path.parent.iterdir()] == ["v1.npz"]  # no temp file left
    assert load_taste(path, base_version=None).version == 1


def test_score_shape_dtype() -> None:
    s = _scorer()
    out = s.score(["a|b|", "c|", "", "me|my homework|the new season of my show|"])
    assert out.shape == (4,) and out.dtype == np.float32 and np.isfinite(out).all()
    assert s.score([]).shape == (0,) and s.name == "taste"
    with pytest.raises(ValueError):
        TasteScorer(np.zeros(10, np.float32), 0.0, GUILD, BASE)


def test_refuses_other_base_and_other_guild(tmp_path: Path) -> None:
    path = save_taste(tmp_path / "v1.npz", _scorer())
    with pytest.raises(ScorerError, match="fitted on base model"):
        load_taste(path, base_version="char-gru-other")
    with pytest.raises(ScorerError, match="not of server 7"):
        load_taste(path, base_version=BASE, guild_id=7)


def test_refuses_corrupt_files(tmp_path: Path) -> None:
    path = save_taste(tmp_path / "v1.npz", _scorer())
    good = path.read_bytes()
    # Truncated, garbage, missing.
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ScorerError, match="corrupt"):
        load_taste(path, base_version=BASE)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ScorerError, match=str(path)):
        load_taste(path, base_version=BASE)
    with pytest.raises(ScorerError, match="missing"):
        load_taste(tmp_path / "v9.npz", base_version=BASE)
    # A weight changed: the checksum fails.
    path.write_bytes(good)
    with np.load(path) as z:
        w = z["weights"].copy()
    w[3] = np.float16(w[3] + 1)
    rewrite_npz(path, weights=w)
    with pytest.raises(ScorerError, match="checksum"):
        load_taste(path, base_version=BASE)
    # An unknown format version, and a header that is not JSON.
    path.write_bytes(good)
    h = npz_header(path)
    rewrite_npz(path, header=np.array(json.dumps({**h, "format_version": 99})))
    with pytest.raises(ScorerError, match="version 99"):
        load_taste(path, base_version=BASE)
    rewrite_npz(path, header=np.array("{not json"))
    with pytest.raises(ScorerError, match="corrupt header"):
        load_taste(path, base_version=BASE)
    # float32 weights where float16 is the format.
    path.write_bytes(good)
    rewrite_npz(path, weights=w.astype(np.float32))
    with pytest.raises(ScorerError, match="do not fit"):
        load_taste(path, base_version=BASE)


def test_save_refuses_non_finite(tmp_path: Path) -> None:
    s = _scorer()
    s.weights[0] = np.inf
    with pytest.raises(ValueError):
        save_taste(tmp_path / "v1.npz", s)
    assert not tmp_path.joinpath("v1.npz").exists()


def test_active_pointer(tmp_path: Path) -> None:
    assert read_active(tmp_path, GUILD) is None and read_pointer(tmp_path, GUILD) is None
    with pytest.raises(ScorerError, match="missing"):
        write_active(tmp_path, GUILD, 1)  # no file to point at
    for v in (1, 2):
        save_taste(taste_file(tmp_path, GUILD, v), _scorer(seed=v, version=v))
    p = write_active(tmp_path, GUILD, 2)
    assert read_active(tmp_path, GUILD) == taste_file(tmp_path, GUILD, 2)
    assert p.sha256 == file_sha256(taste_file(tmp_path, GUILD, 2))
    raw = json.loads((taste_dir(tmp_path, GUILD) / ACTIVE_FILE).read_text())
    assert raw == {"version": 2, "file": "v2.npz", "sha256": p.sha256}
    write_active(tmp_path, GUILD, 1)  # a rollback
    assert read_active(tmp_path, GUILD) == taste_file(tmp_path, GUILD, 1)
    assert read_active(tmp_path, GUILD + 1) is None  # another server: untouched
    names = sorted(q.name for q in taste_dir(tmp_path, GUILD).iterdir())
    assert names == [ACTIVE_FILE, "v1.npz", "v2.npz"]  # no temp file left
    clear_active(tmp_path, GUILD)
    assert read_active(tmp_path, GUILD) is None
    clear_active(tmp_path, GUILD)  # twice: fine


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"version": 1, "file": "../../etc/passwd", "sha256": "x"}',
        b'{"version": 2, "file": "v1.npz", "sha256": "x"}',
        b'{"version": "1", "file": "v1.npz", "sha256": "x"}',
        b"\xff\xfe",
    ],
)
def test_corrupt_pointer_refused(tmp_path: Path, body: bytes) -> None:
    d = taste_dir(tmp_path, GUILD)
    d.mkdir(parents=True)
    (d / ACTIVE_FILE).write_bytes(body)
    with pytest.raises(ScorerError, match="corrupt taste pointer"):
        read_active(tmp_path, GUILD)


def test_the_length_factor_round_trips_and_defaults_to_one(tmp_path: Path) -> None:
    s = _scorer()
    s.length_factor = 0.62
    path = save_taste(taste_file(tmp_path, GUILD, 1), s)
    assert load_taste(path, base_version=BASE).length_factor == pytest.approx(0.62)
    # a file written before tastes had one: no factor
    header = npz_header(path)
    del header["length_factor"]
    rewrite_npz(path, header=np.array(json.dumps(header)))
    assert load_taste(path, base_version=BASE).length_factor == 1.0
    for bad in (0, -1.0, "short", None, 11.0):
        rewrite_npz(path, header=np.array(json.dumps(header | {"length_factor": bad})))
        with pytest.raises(ScorerError, match="length_factor"):
            load_taste(path, base_version=BASE)
