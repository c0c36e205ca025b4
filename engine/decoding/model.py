"""A loaded model: the artifact's vocabulary and template table plus a per-step decoder.

`LoadedModel.step` is what every decoder (training samples, `memebot generate`, the engine)
calls: one character for each row of a batch -> log-probabilities over the vocabulary.
char-gru steps in NumPy or the compiled kernel over weights.npz (no TensorFlow), lstm in
NumPy over weights.npz, or either, with the tf decoder, in a compiled TensorFlow function
(tf_step.py; TensorFlow imported only then); the transformer in NumPy on a KV cache
(transformer.py) or the tf decoder; seed-cnn steps its Keras model (model.keras, Keras
imported only then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.decoding import char_gru, gru_kernel
from engine.decoding.scoring import Scorer
from memebot.artifact.configs import CharGRUConfig, ModelConfig
from memebot.artifact.meta import ArtifactMeta
from memebot.artifact.templates import TemplateEntry, TemplateTable
from memebot.artifact.vocab import Vocab
from memebot.artifact.weights import Weights
from memebot.choices import DECODERS
from memebot.errors import ArtifactError
from memebot.logs import get_logger

log = get_logger(__name__)


class Stepper(Protocol):
    # True: step's first output is normalised log-probabilities already (the compiled kernel);
    # else logits (or log-probabilities, seed-cnn) that LoadedModel.step log-softmaxes
    returns_logp: bool
    backend: str  # what runs the step: "kernel", "numpy", "keras", "tf:<device>" (/readyz)

    def condition(self, entry: TemplateEntry | None) -> int: ...
    def initial_state(self, batch: int) -> Any: ...
    def take_state(self, state: Any, idx: np.ndarray) -> Any: ...
    def concat_states(self, states: list[Any]) -> Any: ...
    def step(
        self, state: Any, chars: np.ndarray, boxes: np.ndarray, conds: np.ndarray
    ) -> tuple[np.ndarray, Any]: ...


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def char_gru_stepper(
    weights: Weights, config: CharGRUConfig, *, decoder: str = "auto", threads: int = 0
) -> Stepper:
    """The CPU steppers. `decoder`: "kernel" (compiled, float16), "numpy", or "auto" (the
    kernel where built with its AVX-512 or AVX2 tiles, where it is the faster step); `threads`:
    kernel threads per step (0 = every core). The tf decoder is built by archs.build_stepper."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
    if decoder == "tf":
        raise ValueError("decoder 'tf': built by engine.decoding.archs.build_stepper")
    use_kernel = decoder == "kernel" or (decoder == "auto" and gru_kernel.preferred())
    if use_kernel and not gru_kernel.available():
        raise ArtifactError(
            "decoder 'kernel': the compiled char-gru kernel is not built here "
            "(reinstall with a C compiler, or use the numpy decoder)"
        )
    if use_kernel:
        try:
            return gru_kernel.KernelGRUStepper(weights, config, threads)
        except gru_kernel.Float16Overflow:
            if decoder == "kernel":
                raise
            log.warning("weights exceed float16's range: decoding with numpy, not the kernel")
    return char_gru.CharGRUStepper(weights, config)


@dataclass(eq=False)
class LoadedModel:
    arch: str
    config: ModelConfig
    vocab: Vocab
    templates: TemplateTable
    stepper: Stepper
    meta: ArtifactMeta | None = None  # None: a model in training
    path: Path | None = None
    # What best-of-N and beam search choose by: well-formedness, plus any terms shipped with
    # the model (added at load, so they swap with it on a reload).
    scorer: Scorer = field(default_factory=Scorer)

    @property
    def step_backend(self) -> str:
        """What runs a decoding step: "kernel", "numpy", "keras" (seed-cnn) or "tf:<device>"
        (the tf decoder, e.g. "tf:GPU:0", "tf:CPU:0"): each stepper names itself."""
        return self.stepper.backend

    @property
    def max_chars(self) -> int | None:
        """The longest caption (`max_len`) it can write: the transformer's positions; None
        for the recurrent and re-reading models, which have no such bound."""
        limit = getattr(self.stepper, "max_chars", None)
        return int(limit) if limit is not None else None

    @property
    def version(self) -> str:
        return self.meta.version if self.meta else f"{self.arch}-untrained"

    def condition(self, entry: TemplateEntry | None) -> int:
        """Per-row conditioning id: the slot (char-gru, lstm, transformer) or Imgflip id
        (seed-cnn); 0 = any."""
        return self.stepper.condition(entry)

    def initial_state(self, batch: int) -> Any:
        return self.stepper.initial_state(batch)

    def take_state(self, state: Any, idx: np.ndarray) -> Any:
        """Rows `idx` of a batched state (beam reordering, finished rows leaving)."""
        return self.stepper.take_state(state, idx)

    def concat_states(self, states: list[Any]) -> Any:
        """One batched state from several (requests joining the batch)."""
        return self.stepper.concat_states(states)

    def warm(self, max_rows: int) -> None:
        """Prepare the step for batches of up to `max_rows` rows (the tf decoder compiles its
        programs now rather than during requests); other steppers need nothing."""
        warm = getattr(self.stepper, "warm", None)
        if warm is not None:
            warm(max_rows)

    def step(
        self, state: Any, chars: np.ndarray, boxes: np.ndarray, conds: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        out, state = self.stepper.step(state, chars, boxes, conds)
        if self.stepper.returns_logp:  # the compiled kernel, float32
            return out, state
        return log_softmax(np.asarray(out, dtype=np.float64)), state
