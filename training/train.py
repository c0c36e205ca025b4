"""`memebot train`: prepared data -> checkpoints -> a finished artifact (or nothing).

Work in progress lives in `OUT.partial/` (best weights, a resumable backup with optimizer
state, history, curves). Only a finished run becomes `OUT/`, by one rename.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from memebot import __version__
from memebot.artifact.jsonio import write_json
from memebot.artifact.meta import ArtifactMeta, make_version, write_artifact
from memebot.artifact.templates import TemplateTable
from memebot.artifact.vocab import Vocab
from memebot.errors import ArtifactError, DataError, UsageError
from training.models import ARCHITECTURES, CONFIGS
from training.options import (
    TrainOptions,
    check_options,
    cpu_has_bf16,
    parse_overrides,
    resolve_precision,
)
from training.prepare import Prepared, prepare

# Re-exported: callers import the options with `train` from here.
__all__ = [
    "TrainOptions",
    "check_options",
    "cpu_has_bf16",
    "parse_overrides",
    "resolve_precision",
    "train",
]


def _strategy(name: str) -> Any:
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _check_paths(opts: TrainOptions) -> Path:
    if opts.arch not in CONFIGS:
        raise UsageError(
            f"--arch {opts.arch}: unknown architecture (choose from {', '.join(CONFIGS)})"
        )
    if opts.out.exists():
        raise UsageError(f"{opts.out}: output directory already exists (--out)")
    if opts.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UsageError(
            "--tensorboard: install the extra first: pip install 'memebot[tensorboard]'"
        )
    if opts.distribute not in ("none", "mirrored", "multiworker"):
        raise UsageError(f"--distribute {opts.distribute}: choose none, mirrored or multiworker")
    work = opts.out.with_name(opts.out.name + ".partial")
    if work.exists() and not opts.resume:
        raise UsageError(
            f"{work}: an unfinished run is there; pass --resume to continue it or delete it"
        )
    if opts.resume and not (work / "run.json").is_file():
        raise UsageError(f"{work}: nothing to resume (no run.json)")
    return work


def train(opts: TrainOptions, echo: Callable[[str], None] = print) -> Path:
    check_options(opts)
    work = _check_paths(opts)
    # A bad --set fails before any data work.
    fresh_config = parse_overrides(opts.arch, opts.overrides) if opts.init_from is None else None
    if opts.resume and fresh_config is not None:
        _check_resumed_config(work, opts.overrides, fresh_config)
    started = time.monotonic()
    init = _load_parent(opts) if opts.init_from else None
    precision = resolve_precision(
        opts.precision, opts.arch, gpu=_has_gpu(), bf16_cpu=cpu_has_bf16()
    )
    prep: Prepared = prepare(opts.data, cache_dir=opts.cache_dir)
    train_caps = prep.splits["train"][: opts.limit or None]
    val_caps = prep.splits["val"][: opts.val_limit or None]
    data_fp = prep.fingerprint
    if opts.extra_data is not None:
        extra, data_fp = _extra_captions(opts.extra_data, opts.extra_weight, data_fp)
        train_caps = train_caps + extra
    negatives: list[Any] = []
    if opts.negative_data is not None:
        repeat = opts.extra_weight if opts.negative_weight is None else opts.negative_weight
        negatives, data_fp = _extra_captions(opts.negative_data, repeat, data_fp, kind="negative")
        data_fp = _fingerprint(data_fp, repr(opts.unlikelihood_weight).encode())
    if not train_caps or not val_caps:  # checked before anything is written
        raise DataError(f"{opts.data}: needs captions in both train and val splits after cleaning")
    if opts.resume:
        run = json.loads((work / "run.json").read_text())
        if run["arch"] != opts.arch:
            raise UsageError(f"--arch {opts.arch}: the run in {work} is {run['arch']}")
        if run["data_fingerprint"] != data_fp:
            raise DataError(f"{opts.data}: differs from the data the run in {work} started on")
        config: Any = CONFIGS[opts.arch](**run["config"])
        vocab, templates = (
            Vocab.load(work / "vocab.json"),
            TemplateTable.load(work / "templates.json"),
        )
    else:
        if init is not None:
            # Fine-tuning keeps the parent's vocabulary, template slots and config.
            config, vocab, templates = init.config, init.vocab, init.templates
        else:
            config = fresh_config
            vocab, templates = prep.build_vocab(), prep.build_templates()
        work.mkdir(parents=True)
        vocab.save(work / "vocab.json")
        templates.save(work / "templates.json")
        write_json(
            work / "run.json",
            {
                "arch": opts.arch,
                "config": config.to_dict(),
                "data_fingerprint": data_fp,
                "command": _command_line(),
                "init_from": init.version if init else None,
            },
        )
    echo(prep.statistics())

    import keras

    from training.callbacks import (
        DiskFull,
        DiskSpaceGuard,
        HistoryWriter,
        PrintSamples,
        StopOnDivergence,
        TimeBudget,
        TrainingDiverged,
        checkpoint_bytes,
    )
    from training.evaluate import evaluate
    from training.schedules import CosineDecay
    from training.trained import TrainedModel

    arch = ARCHITECTURES[opts.arch]
    keras.utils.set_random_seed(opts.seed)
    batch = opts.batch_size or arch.default_batch_size
    lr = opts.learning_rate or arch.default_lr
    if negatives:
        train_data = arch.batches_with_negatives(
            train_caps,
            negatives,
            vocab,
            templates,
            config,
            batch_size=batch,
            negative_weight=opts.unlikelihood_weight,
            seed=opts.seed,
        )
    else:
        train_data = arch.batches(
            train_caps, vocab, templates, config, batch_size=batch, train=True, seed=opts.seed
        )
    val_data = arch.batches(val_caps, vocab, templates, config, batch_size=batch, train=False)

    with _strategy(opts.distribute).scope():
        model = arch.build(config, vocab, templates, precision=precision)
        arch.compile(model, lr, jit=opts.jit)
    echo(
        f"model: {opts.arch} {config.to_dict()}  params {model.count_params():,}  "
        f"precision {precision}"
    )

    best = work / "best.weights.h5"
    previous = (
        json.loads((work / "history.json").read_text())
        if (work / "history.json").is_file()
        else None
    )
    budget = TimeBudget(opts.max_minutes, started)
    callbacks: list[Any] = [
        StopOnDivergence(),  # first: it acts on a broken batch before any other
        # Before the checkpoints: a disk too full for them stops the run cleanly.
        DiskSpaceGuard(work, checkpoint_bytes(model.count_params())),
        keras.callbacks.BackupAndRestore(str(work / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(best),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
            # On resume, only a better epoch than the run's best so far replaces best.weights.h5.
            initial_value_threshold=min((previous or {}).get("val_loss", []) or [None])
            if opts.resume and best.is_file()
            else None,
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=opts.patience),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=1e-5)
        if opts.lr_schedule == "plateau"
        else CosineDecay(
            lr,
            minutes=opts.max_minutes,
            total_steps=opts.epochs * opts.steps_per_epoch or None,
            started=started,
        ),
        budget,
        HistoryWriter(work, previous if opts.resume else None),
        PrintSamples(
            arch, config, vocab, templates, _sample_slugs(templates), opts.seed, echo, budget
        ),
        *arch.callbacks(config, lr),
    ]
    if opts.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(opts.tensorboard)))
    if init is not None and not opts.resume:
        model.set_weights(init.keras_model.get_weights())
    if opts.resume and best.is_file():
        try:
            model.load_weights(best)
        except (ValueError, OSError) as e:
            raise ArtifactError(
                f"{best}: corrupt checkpoint ({e}); delete it to resume from the backup"
            ) from e
    fit_started = time.monotonic()
    steps = opts.steps_per_epoch or None
    # With --steps-per-epoch the training stream repeats; otherwise each epoch is one pass.
    fit_train = arch.fit_input(train_data, repeat=bool(steps))
    fit_val = arch.fit_input(val_data, repeat=False)
    try:
        model.fit(
            fit_train,
            validation_data=fit_val,
            epochs=opts.epochs,
            steps_per_epoch=steps,
            callbacks=callbacks,
            shuffle=False,
            verbose=0 if opts.verbose == 0 else (1 if sys.stdout.isatty() else 2),
        )
    except TrainingDiverged as e:
        raise _diverged(work, lr, f"training diverged: loss {e}") from None
    except DiskFull as e:
        raise _disk_full(work, e) from None
    except (OSError, ValueError) as e:
        if "backup" in str(e) or "h5" in str(e):
            raise ArtifactError(
                f"{work / 'backup'}: corrupt checkpoint ({e}); delete it to restart"
            ) from e
        raise
    fit_seconds = time.monotonic() - fit_started
    if budget.hit:
        echo(f"--max-minutes {opts.max_minutes:g} reached: stopped at batch {budget.batches}")
    if best.is_file():
        model.load_weights(best)
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise _diverged(work, lr, "training diverged: the weights are not finite")
    echo("evaluating the best checkpoint on the val split...")
    # A fresh, uncompiled float32 copy: the artifact carries weights only (no optimizer state,
    # no training precision), and the val figure is what loading the artifact will give.
    export = arch.build(config, vocab, templates)
    export.set_weights(model.get_weights())
    val = evaluate(
        TrainedModel(arch, export, config, vocab, templates), val_caps, progress=opts.verbose > 0
    )
    history = (
        json.loads((work / "history.json").read_text()) if (work / "history.json").is_file() else {}
    )
    # Keras does not count targets: batches seen x mean targets per batch.
    trained_chars = int(sum(history.get("batches", [])) * arch.targets_per_batch(train_data))
    metrics = {
        "val_nats_per_char": val.nats_per_char,
        "val_accuracy": val.accuracy,
        "val_captions": val.captions,
        "val_chars": val.chars,
        "train_captions": len(train_caps),
        "extra_captions": len(train_caps) - len(prep.splits["train"][: opts.limit or None]),
        "negative_captions": len(negatives),
        "epochs": len(history.get("loss", [])),
        "fit_seconds": fit_seconds,
        "trained_chars": trained_chars,
        "train_seconds": sum(history.get("train_seconds", [])),
        "chars_per_second": trained_chars / max(sum(history.get("train_seconds", [])), 1e-9),
        "stopped_by_budget": budget.hit,
        "precision": precision,
    }
    run = json.loads((work / "run.json").read_text())
    meta = ArtifactMeta(
        arch=opts.arch,
        config=config.to_dict(),
        data_fingerprint=data_fp,
        metrics=metrics,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        command=run["command"],
        version=make_version(opts.arch, data_fp),
        files={},
        extra={
            "memebot": __version__,
            "keras": keras.__version__,
            "cleaning": prep.report.to_dict(),
            "params": int(model.count_params()),
            "init_from": run.get("init_from"),
        },
    )
    write_artifact(
        opts.out,
        weights=arch.export_weights(export),
        save_keras=export.save,
        vocab=vocab,
        templates=templates,
        meta=meta,
        extra_files={"history.json": work / "history.json", "curves.png": work / "curves.png"},
    )
    shutil.rmtree(work, ignore_errors=True)
    echo(f"val {val.nats_per_char:.4f} nats/char, accuracy {val.accuracy:.1%}")
    echo(f"wrote {opts.out} ({meta.version})")
    return opts.out


def _extra_captions(
    path: Path, weight: float, base_fp: str, *, kind: str = "positive"
) -> tuple[list[Any], str]:
    """--extra-data's captions (`kind="negative"`: --negative-data's), cleaned by the training
    data's rules and repeated round(row weight x --extra-weight) times, and the fingerprint of
    the data so far + these rows (so new ratings make a new model version)."""
    from training.cleaning import clean_captions, normalise_box
    from training.data import BOX_END, read_weighted

    rows = read_weighted(path, kind=kind)
    kept, _ = clean_captions(c for c, _w in rows)
    # Cleaning normalises the boxes: look weights up by the normalised text.
    weights = {
        (c.template, "".join(normalise_box(b) + BOX_END for b in c.boxes)): w for c, w in rows
    }
    out = [c for c in kept for _ in range(round(weights.get((c.template, c.text), 1.0) * weight))]
    if not out:
        flag = "--extra-data" if kind == "positive" else "--negative-data"
        raise DataError(f"{flag} {path}: no caption left after cleaning and weighting")
    return out, _fingerprint(base_fp, path.read_bytes(), repr(weight).encode())


def _fingerprint(base_fp: str, *parts: bytes) -> str:
    import hashlib

    h = hashlib.sha256(base_fp.encode())
    for part in parts:
        h.update(part)
    return h.hexdigest()


def _kept_for_resume(work: Path) -> bool:
    """After a run stopped by an error: True if an epoch finished (history.json is written at
    the end of each), so `work` stays for --resume; else `work` is removed (it would hold only
    the vocabulary) and False."""
    if (work / "history.json").is_file():
        return True
    shutil.rmtree(work, ignore_errors=True)
    return False


def _diverged(work: Path, lr: float, what: str) -> UsageError:
    """The error for a run whose numbers blew up (`work` kept or removed: _kept_for_resume)."""
    advice = "try a smaller --lr"
    if _kept_for_resume(work):
        kept = f"{work} keeps the finished epochs: --resume continues from the last one"
        return UsageError(f"{what} (learning rate {lr}); {kept}, or delete it and {advice}")
    return UsageError(f"{what} (learning rate {lr}); nothing was saved; {advice}")


def _disk_full(work: Path, e: Exception) -> ArtifactError:
    """The error for a run stopped by DiskSpaceGuard (`work` kept or removed likewise)."""
    if _kept_for_resume(work):
        return ArtifactError(f"{e}; {work} keeps the finished epochs: free space, then --resume")
    return ArtifactError(f"{e}; nothing was saved")


def _check_resumed_config(work: Path, overrides: dict[str, str], config: Any) -> None:
    """--resume keeps the run's config: a --set may repeat it (the same command line plus
    --resume) but not change it."""
    try:
        recorded = json.loads((work / "run.json").read_text())["config"]
        if not isinstance(recorded, dict):
            raise TypeError("config is not an object")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"{work / 'run.json'}: corrupt ({e}); delete {work}") from e
    defaults = type(config)()
    for k, v in overrides.items():
        kept = recorded.get(k, getattr(defaults, k))
        if kept != getattr(config, k):
            raise UsageError(f"--set {k}={v}: the run in {work} has {k}={kept}; --resume keeps it")


def _load_parent(opts: TrainOptions) -> Any:
    from training.trained import load_trained

    assert opts.init_from is not None
    parent = load_trained(opts.init_from)
    if parent.arch.name != opts.arch:
        raise UsageError(
            f"--init-from {opts.init_from}: is {parent.arch.name}, not --arch {opts.arch}"
        )
    return parent


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _sample_slugs(templates: TemplateTable) -> list[str]:
    seen = [e.slug for e in templates.entries if e.slot]
    unseen = [e.slug for e in templates.entries if not e.slot]
    picks = ["success-kid", "drake-hotline-bling"] if "success-kid" in seen else seen[:2]
    return picks + (["distracted-boyfriend"] if "distracted-boyfriend" in unseen else unseen[:1])


def _command_line() -> str:
    return "memebot " + " ".join(shlex.quote(a) for a in sys.argv[1:])
