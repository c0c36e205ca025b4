"""`memebot train`'s options: the TrainOptions dataclass, their range checks (run before any
data is read or anything written, and before TensorFlow is imported), the training precision,
and `--set key=value` parsed by the config field's declared type."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from memebot.artifact.configs import ConfigError
from memebot.errors import UsageError
from training.models import ARCHITECTURES, CONFIGS, DEFAULT_ARCH


@dataclass
class TrainOptions:
    data: Path
    out: Path
    arch: str = DEFAULT_ARCH
    epochs: int = 30  # upper bound; early stopping and --max-minutes usually end sooner
    batch_size: int = 0  # 0 = the architecture's default (256 for both)
    learning_rate: float = 0.0  # 0 = the architecture's default
    steps_per_epoch: int = 0  # 0 = one full pass over the training split
    patience: int = 3  # early stopping: epochs without val improvement
    # plateau: halve the rate when val stalls; cosine: decay to 5% over --max-minutes and/or
    # epochs x --steps-per-epoch (CosineDecay in training/schedules.py says why)
    lr_schedule: str = "plateau"
    # Wall-clock budget from the start of the run, checked after every training batch and
    # epoch; the stopped epoch's validation and the final evaluation run after it.
    max_minutes: float | None = None
    seed: int = 1337
    resume: bool = False
    tensorboard: Path | None = None  # TensorBoard log directory (kept after the run)
    distribute: str = "none"  # none | mirrored | multiworker (reads TF_CONFIG)
    cache_dir: Path | None = None
    init_from: Path | None = None  # start from this artifact's weights (fine-tuning)
    limit: int = 0  # use only the first N training captions (smoke runs)
    val_limit: int = 0  # validate on only the first N val captions (0 = all; seed-cnn is slow)
    overrides: dict[str, str] = field(default_factory=dict)  # --set key=value on the config
    verbose: int = 1
    jit: bool = False  # XLA-compile the training step (char-gru, lstm; ~100 s of compiling)
    precision: str = "auto"  # auto | float32 | mixed_bfloat16 (see resolve_precision)
    # Curated rows (JSON lines with "weight") added to the training split, each repeated
    # round(weight * extra_weight) times; validation stays on the base data's val split.
    extra_data: Path | None = None
    extra_weight: float = 1.0
    # Downvoted rows (JSON lines, "kind": "negative", "split": "train"), each repeated
    # round(weight * negative_weight) times (None: extra_weight) and trained by unlikelihood
    # -log(1 - p) on each character, weighted `unlikelihood_weight` against the
    # cross-entropy of an ordinary character (char-gru).
    negative_data: Path | None = None
    negative_weight: float | None = None
    unlikelihood_weight: float = 1.0
    # Template slugs whose captions are left out of every split (and so get no slot): a
    # model that never saw them, to measure templates without data on (bench/unseen_templates.py).
    exclude_templates: tuple[str, ...] = ()


PRECISIONS = ("auto", "float32", "mixed_bfloat16")
LR_SCHEDULES = ("plateau", "cosine")


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU has bfloat16 dot products (AVX512-BF16 or AMX), which oneDNN uses."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    lines = (ln for ln in text.splitlines() if ln.startswith("flags"))
    flags = next((ln.split(":", 1)[1].split() for ln in lines), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str, arch: str, *, gpu: bool, bf16_cpu: bool) -> str:
    """The precision a run trains in. "auto": mixed_bfloat16 for an architecture that can
    (char-gru, lstm, transformer) on a CPU with bfloat16 dot products (~1.3x the characters per
    second for char-gru, measured in docs/BENCHMARKS.md; ~1.4x less CPU time per batch for the
    transformer, docs/TRAINING.md), float32 otherwise: on a GPU (cuDNN's recurrent kernels are
    float32 here), on other CPUs (bfloat16 would be emulated), and always for seed-cnn, the
    baseline as published."""
    if requested not in PRECISIONS:
        raise UsageError(f"--precision {requested}: choose from {', '.join(PRECISIONS)}")
    can = ARCHITECTURES[arch].precisions
    if requested == "auto":
        return "mixed_bfloat16" if "mixed_bfloat16" in can and bf16_cpu and not gpu else "float32"
    ARCHITECTURES[arch].check_precision(requested)
    return requested


MAX_SEED = 2**32 - 1  # numpy's and TensorFlow's seeds are unsigned 32-bit


def check_options(opts: TrainOptions) -> None:
    """Refuse out-of-range numbers, naming the flag, before any data is read or written.
    The ranges are the ones `memebot train --help` states."""

    def need(ok: bool, flag: str, value: object, rule: str) -> None:
        if not ok:
            raise UsageError(f"{flag} {value}: must be {rule}")

    need(opts.epochs >= 1, "--epochs", opts.epochs, "at least 1")
    need(opts.batch_size >= 0, "--batch-size", opts.batch_size, ">= 1, or 0 for the default")
    lr = opts.learning_rate
    need(math.isfinite(lr) and lr >= 0, "--lr", lr, "a finite number > 0, or 0 for the default")
    need(opts.steps_per_epoch >= 0, "--steps-per-epoch", opts.steps_per_epoch, ">= 0")
    need(opts.patience >= 0, "--patience", opts.patience, ">= 0")
    need(
        opts.lr_schedule in LR_SCHEDULES,
        "--lr-schedule",
        opts.lr_schedule,
        " or ".join(LR_SCHEDULES),
    )
    if opts.lr_schedule == "cosine" and opts.max_minutes is None and not opts.steps_per_epoch:
        raise UsageError(
            "--lr-schedule cosine: needs a run length to decay over: --max-minutes and/or "
            "--steps-per-epoch (with --epochs)"
        )
    if opts.max_minutes is not None:
        m = opts.max_minutes
        need(math.isfinite(m) and m > 0, "--max-minutes", m, "a finite number > 0")
    need(opts.limit >= 0, "--limit", opts.limit, ">= 0 (0 = all training captions)")
    need(opts.val_limit >= 0, "--val-limit", opts.val_limit, ">= 0 (0 = all val captions)")
    need(0 <= opts.seed <= MAX_SEED, "--seed", opts.seed, f"between 0 and {MAX_SEED}")
    ew = opts.extra_weight
    need(math.isfinite(ew) and ew > 0, "--extra-weight", ew, "a finite number > 0")
    if opts.extra_data is not None and not opts.extra_data.is_file():
        raise UsageError(f"--extra-data {opts.extra_data}: no such file")
    nw = opts.negative_weight
    if nw is not None:
        need(math.isfinite(nw) and nw > 0, "--negative-weight", nw, "a finite number > 0")
    ul = opts.unlikelihood_weight
    need(math.isfinite(ul) and ul > 0, "--unlikelihood-weight", ul, "a finite number > 0")
    if opts.negative_data is not None:
        if not opts.negative_data.is_file():
            raise UsageError(f"--negative-data {opts.negative_data}: no such file")
        arch = ARCHITECTURES.get(opts.arch)
        if arch is not None and not arch.trains_negatives:
            raise UsageError(
                f"--negative-data: {arch.name} has no unlikelihood term (char-gru has)"
            )
    # --set would be ignored: the config comes from the parent model.
    if opts.overrides and opts.init_from is not None:
        raise UsageError("--set: cannot change the config of a model given with --init-from")


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def parse_field_value(kind: Any, text: str) -> Any:
    """`text` as the declared type `kind`; ValueError (with what was expected) if it is not."""
    if kind is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError("expected true/false (or yes/no, 1/0)")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected an integer") from None
    if kind is float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return number
    if kind is str:
        return text
    raise ValueError(f"a {kind} field cannot be set from the command line")


def parse_overrides(arch: str, overrides: dict[str, str]) -> Any:
    """The arch's config with `--set key=value` applied: each value parsed by the field's
    declared type and range-checked (memebot.artifact.configs.config_problems)."""
    cls = CONFIGS[arch]
    hints = get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for k, v in overrides.items():
        if k not in fields:
            raise UsageError(
                f"--set {k}={v}: {arch} has no config field {k!r} (fields: {', '.join(fields)})"
            )
        try:
            kwargs[k] = parse_field_value(hints[k], v)
        except ValueError as e:
            raise UsageError(f"--set {k}={v}: {e}") from None
    try:
        return cls(**kwargs)
    except ConfigError as e:
        value = overrides.get(e.field, e.value)
        raise UsageError(f"--set {e.field}={value}: {e.field} {e.problem}") from None
