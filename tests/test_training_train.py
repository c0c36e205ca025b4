"""End-to-end training on the small fixture: artifact, resume, bad inputs, eval."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path

import pytest

from harness.factories import make_imgflip_dir, train_tiny
from memebot.errors import ArtifactError, DataError, UsageError
from training.models import ARCHITECTURES
from training.prepare import prepare
from training.train import TrainOptions, train

pytestmark = pytest.mark.slow


def unigram_nats(train_texts: list[str], val_texts: list[str]) -> float:
    counts = Counter("".join(train_texts))
    total = sum(counts.values())
    chars = "".join(val_texts)
    return -sum(math.log((counts[c] + 1) / (total + len(counts) + 1)) for c in chars) / len(chars)


def test_artifact_is_complete_and_beats_unigram(arch_model: Path, tiny_data: Path) -> None:
    """For each decoded architecture: a seconds-long run gives a complete, loadable artifact
    whose val nats/char beats a unigram model's by a margin."""
    from training.evaluate import evaluate
    from training.trained import load_trained as load_model

    tiny_model = arch_model
    names = {p.name for p in tiny_model.iterdir()}
    assert {
        "model.keras",
        "weights.npz",
        "vocab.json",
        "templates.json",
        "meta.json",
        "history.json",
        "curves.png",
    } <= names
    meta = json.loads((tiny_model / "meta.json").read_text())
    small = {"hidden": 48, "d_model": 32}  # the fixture's --set, by architecture
    assert any(meta["config"].get(k) == v for k, v in small.items())
    assert meta["version"].startswith(meta["arch"] + "-")
    assert meta["data_fingerprint"] and meta["created"] and meta["command"].startswith("memebot")
    assert meta["metrics"]["val_nats_per_char"] > 0
    assert not tiny_model.with_name(tiny_model.name + ".partial").exists()

    prep = prepare(tiny_data)
    model = load_model(tiny_model)
    assert model.arch.name == meta["arch"]
    res = evaluate(model, prep.splits["val"])
    base = unigram_nats(
        [c.text for c in prep.splits["train"]], [c.text for c in prep.splits["val"]]
    )
    assert res.nats_per_char < base - 0.3, (res.nats_per_char, base)
    assert abs(res.nats_per_char - meta["metrics"]["val_nats_per_char"]) < 1e-3
    assert res.chars == sum(len(c.text) for c in prep.splits["val"])  # markers included


def test_eval_on_template_without_training_captions(tiny_model: Path, tmp_path: Path) -> None:
    from training.evaluate import evaluate
    from training.trained import load_trained as load_model

    root = tmp_path / "unseen"
    (root / "memes").mkdir(parents=True)
    (root / "memes" / "Distracted-Boyfriend.json").write_text(
        json.dumps(
            [
                {"boxes": ["my friend", "the homework", "the internet"]},
                {"boxes": ["me", "a sandwich", "my phone"]},
            ]
        )
    )
    prep = prepare(root)
    model = load_model(tiny_model)
    res = evaluate(model, prep.captions("all"))
    assert res.captions == 2 and set(res.per_template) == {"distracted-boyfriend"}
    assert 0 < res.nats_per_char < 5


def test_existing_output_dir_refused(tiny_data: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(UsageError, match="out: output directory already exists"):
        train(TrainOptions(data=tiny_data, out=tmp_path / "out"), echo=lambda _s: None)


def test_unknown_arch_refused(tiny_data: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--arch markov"):
        train(TrainOptions(data=tiny_data, out=tmp_path / "m", arch="markov"), echo=lambda _s: None)


def test_missing_data_refused_without_partial_artifact(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope: no such file"):
        train(TrainOptions(data=tmp_path / "nope", out=tmp_path / "m"), echo=lambda _s: None)
    assert not (tmp_path / "m").exists()


def test_resume_continues_and_corrupt_checkpoint_is_refused(
    tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m"
    opts = dict(
        data=tiny_data,
        out=out,
        epochs=2,
        batch_size=32,
        verbose=0,
        overrides={"hidden": "16", "layers": "1", "char_emb": "8"},
    )
    work = out.with_name("m.partial")
    with pytest.raises(UsageError, match="nothing to resume"):
        train(TrainOptions(**opts, resume=True), echo=lambda _s: None)  # type: ignore[arg-type]

    # The state a run killed after one epoch leaves behind (its backup already consumed).
    work.mkdir()
    prep = prepare(tiny_data)
    prep.build_vocab().save(work / "vocab.json")
    prep.build_templates().save(work / "templates.json")
    (work / "run.json").write_text(
        json.dumps(
            {
                "arch": "char-gru",
                "config": {"hidden": 16, "layers": 1, "char_emb": 8},
                "data_fingerprint": prep.fingerprint,
                "command": "memebot train",
            }
        )
    )
    (work / "history.json").write_text(
        json.dumps({"loss": [3.0], "val_loss": [2.9], "batches": [10]})
    )
    (work / "best.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(ArtifactError, match=r"best\.weights\.h5: corrupt checkpoint"):
        train(TrainOptions(**opts, resume=True), echo=lambda _s: None)  # type: ignore[arg-type]
    assert not out.exists()
    with pytest.raises(UsageError, match="pass --resume"):
        train(TrainOptions(**opts), echo=lambda _s: None)  # type: ignore[arg-type]
    (work / "best.weights.h5").unlink()
    train(TrainOptions(**opts, resume=True), echo=lambda _s: None)  # type: ignore[arg-type]
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["loss"]) == 3  # one recorded epoch + two new ones


def test_seed_cnn_trains_tiny(tiny_data: Path, tmp_path: Path) -> None:
    from engine.decoding.batch import sample_captions
    from engine.decoding.loader import load_model

    out = tmp_path / "seed"
    train(
        TrainOptions(
            data=tiny_data,
            out=out,
            arch="seed-cnn",
            epochs=1,
            batch_size=64,
            limit=20,
            verbose=0,
            overrides={"filters": "8", "dense": "16", "embedding": "4"},
        ),
        echo=lambda _s: None,
    )
    m = load_model(out)
    assert m.arch == "seed-cnn"
    (s,) = sample_captions(m, ["two-buttons"], n_boxes=[2], max_len=24, seed=0)
    assert len(s.boxes) == 2 and len(s.text) <= 24


@pytest.mark.parametrize("damage", ["flip_byte", "drop_vocab", "bad_meta", "wrong_config"])
def test_loader_refuses_corrupt_artifact(tiny_model: Path, tmp_path: Path, damage: str) -> None:
    from engine.decoding.loader import load_model

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    if damage == "flip_byte":
        data = bytearray((bad / "model.keras").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (bad / "model.keras").write_bytes(bytes(data))
        match = "model.keras: checksum mismatch"
    elif damage == "drop_vocab":
        (bad / "vocab.json").unlink()
        match = "vocab.json: missing"
    elif damage == "bad_meta":
        (bad / "meta.json").write_text("{")
        match = "meta.json: corrupt"
    else:
        meta = json.loads((bad / "meta.json").read_text())
        meta["config"]["hidden"] = 64
        (bad / "meta.json").write_text(json.dumps(meta))
        match = "weights do not fit"
    with pytest.raises(ArtifactError, match=match):
        load_model(bad)


def test_truncated_keras_file_with_its_checksum_redone(tiny_model: Path, tmp_path: Path) -> None:
    """Training's loader (eval, --init-from) names the file, whatever Keras raises inside."""
    import hashlib

    from training.trained import load_trained

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    keras_file = bad / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes()[: keras_file.stat().st_size // 2])
    meta = json.loads((bad / "meta.json").read_text())
    meta["files"]["model.keras"] = hashlib.sha256(keras_file.read_bytes()).hexdigest()
    (bad / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"model\.keras: corrupt"):
        load_trained(bad)


def test_budget_tensorboard_and_mirrored_strategy(tiny_data: Path, tmp_path: Path) -> None:
    """--max-minutes stops early but still ships the best checkpoint; the tf.distribute path
    (MirroredStrategy over this machine's one device) and TensorBoard logs work end to end."""
    out, tb = tmp_path / "m", tmp_path / "tb"
    train(
        TrainOptions(
            data=tiny_data,
            out=out,
            epochs=50,
            batch_size=16,
            max_minutes=0.0001,
            distribute="mirrored",
            tensorboard=tb,
            verbose=0,
            overrides={"hidden": "16", "layers": "1", "char_emb": "8"},
        ),
        echo=lambda _s: None,
    )
    meta = json.loads((out / "meta.json").read_text())
    assert meta["metrics"]["stopped_by_budget"] is True
    assert meta["metrics"]["epochs"] == 1
    assert any(tb.rglob("events.out.tfevents.*"))


def test_cosine_schedule_decays_the_rate_over_the_steps(tiny_data: Path, tmp_path: Path) -> None:
    """--lr-schedule cosine in a real fit: the rate each epoch ends with falls along the cosine
    over epochs x steps-per-epoch, to 5% of --lr at the last batch, and no plateau halving
    interferes (patience is off, val may rise)."""
    out = tmp_path / "m"
    train(
        TrainOptions(
            data=tiny_data,
            out=out,
            epochs=3,
            steps_per_epoch=4,
            batch_size=16,
            learning_rate=0.01,
            lr_schedule="cosine",
            patience=10,
            verbose=0,
            overrides=TINY_CONFIGS["char-gru"],
        ),
        echo=lambda _s: None,
    )
    rates = json.loads((out / "history.json").read_text())["learning_rate"]
    # The rate set before the epoch's last batch (steps 3, 7, 11 of 12).
    expected = [0.01 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / 12))) for s in (3, 7, 11)]
    assert rates == pytest.approx(expected, rel=1e-5)


# Small configs so that one batch of each architecture costs well under a second.
TINY_CONFIGS = {
    "char-gru": {"hidden": "16", "layers": "1", "char_emb": "8"},
    "lstm": {"hidden": "16", "layers": "1", "char_emb": "8"},
    "seed-cnn": {"filters": "8", "dense": "16", "embedding": "4"},
}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_max_minutes_stops_within_one_batch(arch: str, tiny_data: Path, tmp_path: Path) -> None:
    """A budget already spent when training starts: every architecture stops after its first
    batch of a long epoch (not at the epoch's end), starts no other epoch and still ships an
    artifact."""
    out = tmp_path / "m"
    lines: list[str] = []
    train(
        TrainOptions(
            data=tiny_data,
            out=out,
            arch=arch,
            epochs=50,
            batch_size=8,  # ~55 batches per epoch of the tiny data
            max_minutes=1e-6,
            verbose=0,
            precision="float32",
            overrides=TINY_CONFIGS.get(arch, {}),
        ),
        echo=lines.append,
    )
    meta = json.loads((out / "meta.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert meta["metrics"]["stopped_by_budget"] is True
    assert history["batches"] == [1]  # one epoch, one batch
    assert any(line.endswith("reached: stopped at batch 1") for line in lines)
    assert not any(line.startswith("  sample") for line in lines)  # no sampling past the budget


def test_init_from_continues_from_parent_weights(
    tiny_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    from engine.decoding.loader import load_model

    parent = load_model(tiny_model)
    out = tmp_path / "child"
    train(
        TrainOptions(
            data=tiny_data,
            out=out,
            epochs=1,
            batch_size=32,
            learning_rate=1e-9,
            init_from=tiny_model,
            verbose=0,
        ),
        echo=lambda _s: None,
    )
    child = load_model(out)
    assert child.config == parent.config and child.vocab == parent.vocab
    parent_nats = parent.meta.metrics["val_nats_per_char"]  # type: ignore[union-attr]
    child_nats = child.meta.metrics["val_nats_per_char"]  # type: ignore[union-attr]
    assert abs(child_nats - parent_nats) < 0.05  # a near-zero learning rate keeps the parent's fit
    assert child.meta.extra["init_from"] == parent.version  # type: ignore[union-attr,index]
    with pytest.raises(UsageError, match="--set"):
        train(
            TrainOptions(
                data=tiny_data, out=tmp_path / "x", init_from=tiny_model, overrides={"hidden": "8"}
            ),
            echo=lambda _s: None,
        )


def test_no_val_split_refused_before_writing_anything(tmp_path: Path) -> None:
    root = make_imgflip_dir(tmp_path / "d", per_template=2)  # 6 captions: too few for a val split
    with pytest.raises(DataError, match="both train and val"):
        train(TrainOptions(data=root, out=tmp_path / "m"), echo=lambda _s: None)
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()


@pytest.mark.parametrize(
    ("requested", "arch", "gpu", "bf16_cpu", "expected"),
    [
        ("auto", "char-gru", False, True, "mixed_bfloat16"),
        ("auto", "char-gru", False, False, "float32"),
        ("auto", "char-gru", True, True, "float32"),
        ("auto", "seed-cnn", False, True, "float32"),
        ("auto", "lstm", False, True, "mixed_bfloat16"),
        ("auto", "transformer", False, True, "mixed_bfloat16"),
        ("auto", "transformer", True, True, "float32"),
        ("float32", "char-gru", False, True, "float32"),
        ("mixed_bfloat16", "char-gru", False, False, "mixed_bfloat16"),
        ("float32", "seed-cnn", False, True, "float32"),
    ],
)
def test_resolve_precision(
    requested: str, arch: str, gpu: bool, bf16_cpu: bool, expected: str
) -> None:
    from training.train import resolve_precision

    assert resolve_precision(requested, arch, gpu=gpu, bf16_cpu=bf16_cpu) == expected


@pytest.mark.parametrize(
    ("requested", "arch", "named"),
    [("mixed_bfloat16", "seed-cnn", "seed-cnn"), ("float16", "char-gru", "float16")],
)
def test_bad_precision_refused(requested: str, arch: str, named: str) -> None:
    from training.train import resolve_precision

    with pytest.raises(UsageError, match=named):
        resolve_precision(requested, arch, gpu=False, bf16_cpu=True)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse avx2 avx512f avx512_bf16 avx512_vnni", True),
        ("fpu sse avx2 amx_bf16 amx_tile", True),
        ("fpu sse avx2 avx512f avx512_vnni", False),
    ],
)
def test_cpu_has_bf16_reads_flags(tmp_path: Path, flags: str, expected: bool) -> None:
    from training.train import cpu_has_bf16

    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert cpu_has_bf16(info) is expected
    assert cpu_has_bf16(tmp_path / "missing") is False


@pytest.mark.parametrize("arch", ["char-gru", "lstm"])
def test_bfloat16_training_writes_a_float32_artifact(
    arch: str, tiny_data: Path, tmp_path: Path
) -> None:
    """Mixed precision is a training detail: the artifact is float32 and scores as recorded."""
    from training.evaluate import evaluate
    from training.trained import load_trained as load_model

    out = train_tiny(tiny_data, tmp_path / "bf16", arch=arch, epochs=4, precision="mixed_bfloat16")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["metrics"]["precision"] == "mixed_bfloat16"
    model = load_model(out)
    assert {v.dtype for v in model.keras_model.weights} == {"float32"}
    assert model.keras_model.dtype_policy.name == "float32"
    prep = prepare(tiny_data)
    res = evaluate(model, prep.splits["val"])
    assert abs(res.nats_per_char - meta["metrics"]["val_nats_per_char"]) < 1e-3
    base = unigram_nats(
        [c.text for c in prep.splits["train"]], [c.text for c in prep.splits["val"]]
    )
    assert res.nats_per_char < base - 0.3, (res.nats_per_char, base)


def test_exclude_templates_trains_a_model_that_never_saw_them(
    tiny_data: Path, tmp_path: Path
) -> None:
    """--exclude-templates: the withheld template keeps its box count but has no slot, no
    training captions and no val captions; the others train as usual."""
    from memebot.artifact.templates import GENERIC_SLOT, TemplateTable

    out = train_tiny(tiny_data, tmp_path / "m", epochs=1, exclude_templates=("y-u-no",))
    table = TemplateTable.load(out / "templates.json")
    withheld = table.get("y-u-no")
    assert withheld is not None and withheld.slot == GENERIC_SLOT
    assert withheld.train_captions == 0 and withheld.box_count == 2
    seen = table.get("two-buttons")
    assert seen is not None and seen.slot != GENERIC_SLOT and seen.train_captions > 0
    meta = json.loads((out / "meta.json").read_text())
    prep = prepare(tiny_data)
    kept_val = [c for c in prep.splits["val"] if c.template != "y-u-no"]
    assert meta["metrics"]["val_captions"] == len(kept_val)
    assert meta["extra"]["withheld_templates"] == ["y-u-no"]
    assert meta["metrics"]["extra_captions"] == 0


def test_exclude_templates_refuses_a_template_without_captions(
    tiny_data: Path, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="--exclude-templates no-such-meme"):
        train(TrainOptions(data=tiny_data, out=tmp_path / "m", exclude_templates=("no-such-meme",)))
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()
