"""Evaluation: mean cross-entropy in nats per predicted character (end-of-box markers
included), top-1 accuracy, and a per-template table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from training.batches import GRUBatches, SeedBatches, encode_captions
from training.data import Caption
from training.runtime import LoadedModel, log_softmax


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
    model: LoadedModel,
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
    km = model.keras_model
    if model.arch == "char-gru":
        texts = encode_captions(captions, model.vocab)
        slots = np.array([model.templates.slot_of(c.template) for c in captions])
        data = GRUBatches(
            texts, slots, model.vocab.box_end_id, batch_size=batch_size, shuffle=False
        )
        for i in tqdm(range(len(data)), desc="eval", disable=not progress, leave=False):
            x, y, w = data[i]
            logp = log_softmax(np.asarray(km(x, training=False), dtype=np.float64))  # [B,T,V]
            tgt = np.take_along_axis(logp, y[..., None], -1)[..., 0]  # [B,T]
            correct = (logp.argmax(-1) == y) & (w > 0)
            for row, j in enumerate(data.batches[i]):
                t = captions[j].template
                nll[t] -= float((tgt[row] * w[row]).sum())
                hits[t] += int(correct[row].sum())
                n_chars[t] += int(w[row].sum())
    else:
        data_s = SeedBatches(
            captions,
            model.templates,
            model.vocab,
            model.config,
            batch_size=batch_size,
            shuffle=False,
        )
        for i in tqdm(range(len(data_s)), desc="eval", disable=not progress, leave=False):
            x, y = data_s[i]
            probs = np.asarray(km(x, training=False), dtype=np.float64)
            p = np.maximum(probs[np.arange(len(y)), y], 1e-30)
            sel = data_s.rows[data_s.order[i * batch_size : (i + 1) * batch_size]]
            for (ci, _), lp, ok in zip(sel, np.log(p), probs.argmax(-1) == y, strict=True):
                t = captions[ci].template
                nll[t] -= float(lp)
                hits[t] += int(ok)
                n_chars[t] += 1
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
