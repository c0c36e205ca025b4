"""`memebot train`: prepared data -> checkpoints -> a finished artifact (or nothing).

Work in progress lives in `OUT.partial/` (best weights, a resumable backup with optimizer
state, history, curves). Only a finished run becomes `OUT/`, by one rename.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from training.rundir import check_paths, check_resumed_config, disk_full, diverged

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


@dataclass
class _Data:
    """What one run trains and validates on."""

    prep: Prepared
    train: list[Any]  # captions (+ curated rows, each repeated by its weight)
    val: list[Any]
    negatives: list[Any]  # downvoted rows for the unlikelihood term
    fingerprint: str  # of all of it: new rows make a new model version
    own_train: int = 0  # the base data's training captions in `train`
    withheld: frozenset[str] = frozenset()  # --exclude-templates: no slot, no captions


@dataclass
class _Setup:
    """The run's model side: config, vocabulary, template slots, and the parent it starts from."""

    config: Any
    vocab: Vocab
    templates: TemplateTable
    init: Any  # the --init-from TrainedModel, or None


def train(opts: TrainOptions, echo: Callable[[str], None] = print) -> Path:
    """Checks -> data -> the run directory (new or resumed) -> fit -> evaluate -> artifact."""
    check_options(opts)
    work = check_paths(opts)
    # A bad --set fails before any data work.
    fresh_config = parse_overrides(opts.arch, opts.overrides) if opts.init_from is None else None
    if opts.resume and fresh_config is not None:
        check_resumed_config(work, opts.overrides, fresh_config)
    started = time.monotonic()
    init = _load_parent(opts) if opts.init_from else None
    precision = resolve_precision(
        opts.precision, opts.arch, gpu=_has_gpu(), bf16_cpu=cpu_has_bf16()
    )
    data = _load_data(opts)
    setup = _open_run(opts, work, data, fresh_config, init)
    echo(data.prep.statistics())
    if data.withheld:
        echo(f"withheld (no captions, no slot): {', '.join(sorted(data.withheld))}")
    model, fit = _fit(opts, work, data, setup, precision, started, echo)
    return _write(opts, work, data, setup, model, fit, precision, echo)


def _load_data(opts: TrainOptions) -> _Data:
    prep: Prepared = prepare(opts.data, cache_dir=opts.cache_dir)
    withheld = _check_withheld(prep, opts.exclude_templates)
    # Withheld templates lose their captions in every split (and so their slot): the model
    # is one that never saw them, to measure templates without data on.
    train_caps = [c for c in prep.splits["train"] if c.template not in withheld]
    val_caps = [c for c in prep.splits["val"] if c.template not in withheld]
    train_caps = train_caps[: opts.limit or None]
    val_caps = val_caps[: opts.val_limit or None]
    own_train = len(train_caps)
    data_fp = prep.fingerprint
    if withheld:
        data_fp = _fingerprint(data_fp, ("withheld:" + ",".join(sorted(withheld))).encode())
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
    return _Data(prep, train_caps, val_caps, negatives, data_fp, own_train, withheld)


def _check_withheld(prep: Prepared, slugs: tuple[str, ...]) -> frozenset[str]:
    """--exclude-templates as slugs that have captions in the data (a typo would otherwise
    train an ordinary model without saying so)."""
    have = {c.template for c in prep.captions("all")}
    unknown = sorted(s for s in slugs if s not in have)
    if unknown:
        raise UsageError(
            f"--exclude-templates {','.join(unknown)}: no captions of such a template in "
            f"{prep.source} (slugs look like {min(have) if have else 'success-kid'})"
        )
    return frozenset(slugs)


def _open_run(opts: TrainOptions, work: Path, data: _Data, fresh_config: Any, init: Any) -> _Setup:
    """The resumed run's config, vocabulary and slots from `work`; or a new `work` with them
    (a fine-tune keeps the parent's)."""
    if opts.resume:
        run = json.loads((work / "run.json").read_text())
        if run["arch"] != opts.arch:
            raise UsageError(f"--arch {opts.arch}: the run in {work} is {run['arch']}")
        if run["data_fingerprint"] != data.fingerprint:
            raise DataError(f"{opts.data}: differs from the data the run in {work} started on")
        return _Setup(
            CONFIGS[opts.arch](**run["config"]),
            Vocab.load(work / "vocab.json"),
            TemplateTable.load(work / "templates.json"),
            init,
        )
    if init is not None:
        setup = _Setup(init.config, init.vocab, init.templates, init)
    else:
        setup = _Setup(
            fresh_config,
            data.prep.build_vocab(),
            data.prep.build_templates(withheld=data.withheld),
            None,
        )
    work.mkdir(parents=True)
    setup.vocab.save(work / "vocab.json")
    setup.templates.save(work / "templates.json")
    write_json(
        work / "run.json",
        {
            "arch": opts.arch,
            "config": setup.config.to_dict(),
            "data_fingerprint": data.fingerprint,
            "command": _command_line(),
            "init_from": init.version if init else None,
        },
    )
    return setup


@dataclass
class _Fitted:
    seconds: float
    budget_hit: bool
    targets_per_batch: float  # Keras does not count targets: batches x this


def _fit(
    opts: TrainOptions,
    work: Path,
    data: _Data,
    setup: _Setup,
    precision: str,
    started: float,
    echo: Callable[[str], None],
) -> tuple[Any, _Fitted]:
    """Batches, the compiled model, its callbacks, `model.fit`; the best epoch's weights
    loaded. Divergence, a full disk and corrupt checkpoints become one-line errors."""
    import keras

    from training.callbacks import DiskFull, TrainingDiverged

    arch = ARCHITECTURES[opts.arch]
    config, vocab, templates = setup.config, setup.vocab, setup.templates
    keras.utils.set_random_seed(opts.seed)
    batch = opts.batch_size or arch.default_batch_size
    lr = opts.learning_rate or arch.default_lr
    if data.negatives:
        train_data = arch.batches_with_negatives(
            data.train,
            data.negatives,
            vocab,
            templates,
            config,
            batch_size=batch,
            negative_weight=opts.unlikelihood_weight,
            seed=opts.seed,
        )
    else:
        train_data = arch.batches(
            data.train, vocab, templates, config, batch_size=batch, train=True, seed=opts.seed
        )
    val_data = arch.batches(data.val, vocab, templates, config, batch_size=batch, train=False)

    with _strategy(opts.distribute).scope():
        model = arch.build(config, vocab, templates, precision=precision)
        arch.compile(model, lr, jit=opts.jit)
    echo(
        f"model: {opts.arch} {config.to_dict()}  params {model.count_params():,}  "
        f"precision {precision}"
    )
    best = work / "best.weights.h5"
    callbacks, budget = _callbacks(opts, work, setup, model, lr, started, echo)
    if setup.init is not None and not opts.resume:
        model.set_weights(setup.init.keras_model.get_weights())
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
        raise diverged(work, lr, f"training diverged: loss {e}") from None
    except DiskFull as e:
        raise disk_full(work, e) from None
    except (OSError, ValueError) as e:
        if "backup" in str(e) or "h5" in str(e):
            raise ArtifactError(
                f"{work / 'backup'}: corrupt checkpoint ({e}); delete it to restart"
            ) from e
        raise
    fitted = _Fitted(time.monotonic() - fit_started, budget.hit, arch.targets_per_batch(train_data))
    if budget.hit:
        echo(f"--max-minutes {opts.max_minutes:g} reached: stopped at batch {budget.batches}")
    if best.is_file():
        model.load_weights(best)
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise diverged(work, lr, "training diverged: the weights are not finite")
    return model, fitted


def _callbacks(
    opts: TrainOptions,
    work: Path,
    setup: _Setup,
    model: Any,
    lr: float,
    started: float,
    echo: Callable[[str], None],
) -> tuple[list[Any], Any]:
    """The fit's callbacks, in the order they must act, and its time budget."""
    import keras

    from training.callbacks import (
        DiskSpaceGuard,
        HistoryWriter,
        PrintSamples,
        StopOnDivergence,
        TimeBudget,
        checkpoint_bytes,
    )
    from training.schedules import CosineDecay

    arch = ARCHITECTURES[opts.arch]
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
            arch,
            setup.config,
            setup.vocab,
            setup.templates,
            _sample_slugs(setup.templates),
            opts.seed,
            echo,
            budget,
        ),
        *arch.callbacks(setup.config, lr),
    ]
    if opts.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(opts.tensorboard)))
    return callbacks, budget


def _write(
    opts: TrainOptions,
    work: Path,
    data: _Data,
    setup: _Setup,
    model: Any,
    fit: _Fitted,
    precision: str,
    echo: Callable[[str], None],
) -> Path:
    """The best weights evaluated on val as the artifact will load them, then OUT written
    whole (and OUT.partial removed)."""
    import keras

    from training.evaluate import evaluate
    from training.trained import TrainedModel

    arch = ARCHITECTURES[opts.arch]
    config, vocab, templates = setup.config, setup.vocab, setup.templates
    echo("evaluating the best checkpoint on the val split...")
    # A fresh, uncompiled float32 copy: the artifact carries weights only (no optimizer state,
    # no training precision), and the val figure is what loading the artifact will give.
    export = arch.build(config, vocab, templates)
    export.set_weights(model.get_weights())
    val = evaluate(
        TrainedModel(arch, export, config, vocab, templates), data.val, progress=opts.verbose > 0
    )
    history = (
        json.loads((work / "history.json").read_text()) if (work / "history.json").is_file() else {}
    )
    trained_chars = int(sum(history.get("batches", [])) * fit.targets_per_batch)
    own_train = data.own_train
    metrics = {
        "val_nats_per_char": val.nats_per_char,
        "val_accuracy": val.accuracy,
        "val_captions": val.captions,
        "val_chars": val.chars,
        "train_captions": len(data.train),
        "extra_captions": len(data.train) - own_train,
        "negative_captions": len(data.negatives),
        "epochs": len(history.get("loss", [])),
        "fit_seconds": fit.seconds,
        "trained_chars": trained_chars,
        "train_seconds": sum(history.get("train_seconds", [])),
        "chars_per_second": trained_chars / max(sum(history.get("train_seconds", [])), 1e-9),
        "stopped_by_budget": fit.budget_hit,
        "precision": precision,
    }
    run = json.loads((work / "run.json").read_text())
    meta = ArtifactMeta(
        arch=opts.arch,
        config=config.to_dict(),
        data_fingerprint=data.fingerprint,
        metrics=metrics,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        command=run["command"],
        version=make_version(opts.arch, data.fingerprint),
        files={},
        extra={
            "memebot": __version__,
            "keras": keras.__version__,
            "cleaning": data.prep.report.to_dict(),
            "params": int(model.count_params()),
            "init_from": run.get("init_from"),
            "withheld_templates": sorted(data.withheld),
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
