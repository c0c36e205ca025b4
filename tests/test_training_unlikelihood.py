"""The unlikelihood term of fine-tuning: downvoted rows (`memebot train --negative-data`) are
trained with -log(1 - p) on each character, which lowers their probability; ordinary rows keep
their cross-entropy; held-out rows are never read; bad flags are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.factories import train_tiny
from memebot.cli import main
from training.batches import GRUBatches, gru_arrays
from training.data import read_weighted
from training.gru_dataset import NEGATIVE_OFFSET

END = 5


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def loss_inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(3, 6, 9)) * 3).astype(np.float32)  # [B,T,V]
    y = rng.integers(0, 9, (3, 6)).astype(np.int32)
    w = (rng.random((3, 6)) > 0.25).astype(np.float32)
    return logits, y, w


def test_caption_loss_is_keras_cross_entropy_without_negatives() -> None:
    import keras

    from training.models.recurrent import caption_loss

    logits, y, w = loss_inputs()
    ours = float(caption_loss()(y, logits, sample_weight=w))
    ref = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight"
    )
    assert ours == pytest.approx(float(ref(y, logits, sample_weight=w)), rel=1e-5)


def test_negative_targets_get_unlikelihood_weighted() -> None:
    from training.models.recurrent import UL_FLOOR, caption_loss

    logits, y, w = loss_inputs(1)
    logits[2, 0] = 0.0
    logits[2, 0, y[2, 0]] = 20.0  # nearly certain: its unlikelihood is floored
    neg = np.zeros_like(w, dtype=bool)
    neg[1:] = True  # rows 1 and 2 are downvoted
    w = np.where(neg, 0.5 * w, w)  # --unlikelihood-weight 0.5
    p = np.take_along_axis(softmax(logits.astype(np.float64)), y[..., None], -1)[..., 0]
    per = np.where(neg, -np.log(np.maximum(1 - p, UL_FLOOR)), -np.log(p))
    expected = (per * w).sum() / w.sum()
    got = float(caption_loss()(np.where(neg, y + NEGATIVE_OFFSET, y), logits, sample_weight=w))
    assert got == pytest.approx(expected, rel=1e-4)
    assert per[2, 0] == pytest.approx(-np.log(UL_FLOOR))


def test_negative_rows_are_encoded_in_numpy_and_graph_batches_alike() -> None:
    rng = np.random.default_rng(0)
    texts = [rng.integers(6, 30, rng.integers(3, 20)).astype(np.int32) for _ in range(23)]
    for t in texts:
        t[-1] = END
    slots = rng.integers(1, 5, len(texts))
    negative = np.arange(len(texts)) % 3 == 0
    x, y, w = gru_arrays(texts[:4], slots[:4], END, negative=negative[:4], negative_weight=0.25)
    plain_x, plain_y, plain_w = gru_arrays(texts[:4], slots[:4], END)
    for k in x:  # the inputs do not change, only targets and weights of negative rows
        np.testing.assert_array_equal(x[k], plain_x[k])
    live = plain_w > 0
    for r in (0, 3):  # the negative rows among the first four
        np.testing.assert_array_equal(y[r][live[r]], plain_y[r][live[r]] + NEGATIVE_OFFSET)
        assert (y[r][~live[r]] == plain_y[r][~live[r]]).all()  # padding stays padding
        np.testing.assert_array_equal(w[r], 0.25 * plain_w[r])
    np.testing.assert_array_equal(y[1:3], plain_y[1:3])
    np.testing.assert_array_equal(w[1:3], plain_w[1:3])

    data = GRUBatches(
        texts,
        slots,
        END,
        batch_size=5,
        shuffle=False,
        negative=negative,
        negative_weight=0.25,
    )
    for i, (gx, gy, gw) in enumerate(data.as_tf_dataset()):
        nx, ny, nw = data[i]
        np.testing.assert_array_equal(gy.numpy(), ny)
        np.testing.assert_array_equal(gw.numpy(), nw)
        np.testing.assert_array_equal(gx["chars"].numpy(), nx["chars"])


ROWS: list[dict[str, Any]] = [
    {"template": "two-buttons", "boxes": ["when my dog eats pizza", "again"], "weight": 3},
    {
        "template": "success-kid",
        "boxes": ["when my boss hates the wifi"],
        "kind": "negative",
        "split": "train",
        "weight": 2,
    },
    {
        "template": "y-u-no",
        "boxes": ["when the teacher finds my phone", "dad again"],
        "kind": "negative",
        "split": "train",
        "weight": 1,
    },
    {
        "template": "success-kid",
        "boxes": ["when a cat breaks the car"],
        "kind": "negative",
        "split": "heldout",
    },
    {"template": "success-kid", "boxes": ["held out caption"], "split": "heldout"},
]


def write_rows(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_negative_rows_are_read_and_held_out_rows_never(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "rows.jsonl")
    negatives = read_weighted(rows, kind="negative")
    assert [(c.boxes, w) for c, w in negatives] == [
        (("when my boss hates the wifi",), 2.0),
        (("when the teacher finds my phone", "dad again"), 1.0),
    ]
    positives = read_weighted(rows)
    assert [c.boxes for c, _ in positives] == [("when my dog eats pizza", "again")]
    # A JSON list of [template_id, text] rows has no kinds: all positive, none negative.
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps([[61544, "a|b|"]]))
    assert read_weighted(flat, kind="negative") == [] and len(read_weighted(flat)) == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--unlikelihood-weight", "0"], "--unlikelihood-weight 0.0: must be a finite number > 0"),
        (["--unlikelihood-weight", "-1"], "--unlikelihood-weight -1.0: must be"),
        (["--unlikelihood-weight", "inf"], "--unlikelihood-weight inf: must be"),
        (["--negative-data", "/nonexistent/down.jsonl"], "--negative-data /nonexistent/down.jsonl"),
    ],
)
def test_bad_negative_flags(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), *flags])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("memebot: error: ") and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_negative_data_needs_an_architecture_with_unlikelihood(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = write_rows(tmp_path / "rows.jsonl")
    args = ["train", "--arch", "seed-cnn", "--data", str(tmp_path), "--out", str(tmp_path / "m")]
    assert main([*args, "--negative-data", str(rows)]) != 0
    err = capsys.readouterr().err
    assert err == (
        "memebot: error: --negative-data: seed-cnn has no unlikelihood term (char-gru has)\n"
    )


def nats_on(model: Path, rows: list[tuple[str, tuple[str, ...]]]) -> float:
    from training.data import Caption
    from training.evaluate import evaluate
    from training.trained import load_trained

    result = evaluate(load_trained(model), [Caption(t, b) for t, b in rows], progress=False)
    return result.nats_per_char


@pytest.mark.slow
def test_a_negative_row_lowers_the_probability_of_its_characters(
    tiny_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    rows = write_rows(tmp_path / "rows.jsonl")
    fine = {"init_from": tiny_model, "epochs": 1, "steps_per_epoch": 8, "learning_rate": 3e-3}
    fine |= {"overrides": {}, "extra_data": rows, "extra_weight": 10.0}
    plain = train_tiny(tiny_data, tmp_path / "plain", **fine)
    pushed = train_tiny(tiny_data, tmp_path / "pushed", negative_data=rows, **fine)
    meta = json.loads((pushed / "meta.json").read_text())
    assert meta["metrics"]["negative_captions"] == 2 * 10 + 1 * 10  # weight x --extra-weight
    assert (
        meta["data_fingerprint"]
        != json.loads((plain / "meta.json").read_text())["data_fingerprint"]
    )
    trained = [(ROWS[i]["template"], tuple(ROWS[i]["boxes"])) for i in (1, 2)]
    # The downvoted rows became less likely than without them (more nats per character)...
    assert nats_on(pushed, trained) > nats_on(plain, trained) + 0.05
    # ... the upvoted row did not lose much, the base data little.
    up = [(ROWS[0]["template"], tuple(ROWS[0]["boxes"]))]
    assert nats_on(pushed, up) < nats_on(plain, up) + 0.5
