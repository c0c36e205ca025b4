"""Evaluation: mean cross-entropy in nats per predicted character (end-of-box markers
included), top-1 accuracy, and a per-template table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from training.data import Caption
from training.trained import TrainedModel


@dataclass
class EvalResult:
    nats_per_char: float
    accuracy: float
    captions: int
    chars: int
    per_template: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "nats_per_char": self.nats_per_char,
            "accuracy": self.accuracy,
            "captions": self.captions,
            "chars": self.chars,
            "per_template": self.per_template,
        }

    def table(self) -> str:
        lines = [f"{'template':<48}{'captions':>9}{'chars':>10}{'nats/char':>10}{'acc':>7}"]
        for t, r in sorted(self.per_template.items()):
            lines.append(
                f"{t[:47]:<48}{int(r['captions']):>9,}{int(r['chars']):>10,}"
                f"{r['nats_per_char']:>10.3f}{r['accuracy']:>7.1%}"
            )
        lines.append(
            f"{'ALL':<48}{self.captions:>9,}{self.chars:>10,}{self.nats_per_char:>10.3f}{self.accuracy:>7.1%}"
        )
        return "\n".join(lines)


def evaluate(
    model: TrainedModel,
    captions: Sequence[Caption],
    *,
    batch_size: int = 256,
    progress: bool = False,
) -> EvalResult:
    if not captions:
        raise ValueError("no captions to evaluate")
    nll: dict[str, float] = defaultdict(float)
    hits: dict[str, int] = defaultdict(int)
    n_chars: dict[str, int] = defaultdict(int)
    n_caps: dict[str, int] = defaultdict(int)
    for c in captions:
        n_caps[c.template] += 1
    rows = model.arch.eval_pass(
        model.keras_model,
        captions,
        model.vocab,
        model.templates,
        model.config,
        batch_size=batch_size,
        progress=progress,
    )
    for caps, nats, correct, chars in rows:
        for ci, lp, ok, n in zip(caps, nats, correct, chars, strict=True):
            t = captions[int(ci)].template
            nll[t] += float(lp)
            hits[t] += int(ok)
            n_chars[t] += int(n)
    total_chars = sum(n_chars.values())
    per = {
        t: {
            "captions": n_caps[t],
            "chars": n_chars[t],
            "nats_per_char": nll[t] / n_chars[t],
            "accuracy": hits[t] / n_chars[t],
        }
        for t in n_chars
    }
    return EvalResult(
        nats_per_char=sum(nll.values()) / total_chars,
        accuracy=sum(hits.values()) / total_chars,
        captions=len(captions),
        chars=total_chars,
        per_template=per,
    )
