"""The promotion gate: a rule over evaluation numbers (pure; the worker measures them).

A candidate is promoted only if, against the active model,
  1. its val nats/char on the base data's val split is at most the active's + VAL_TOLERANCE,
  2. its mean log-likelihood per char of held-out upvoted captions is higher, and
  3. its mean log-likelihood per char of held-out downvoted captions is not higher.
Log-likelihood per char = -(nats per char), as `memebot eval` reports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

VAL_TOLERANCE = 0.02


@dataclass(frozen=True)
class Scores:
    val_nats: float  # base val split, nats/char (lower is better)
    up_ll: float | None  # held-out upvoted captions, mean log-likelihood/char (None: none)
    down_ll: float | None  # held-out downvoted captions (None: none rated down)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # why it failed; [] when it passed
    candidate: Scores | None = None
    active: Scores | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "candidate": asdict(self.candidate) if self.candidate else None,
            "active": asdict(self.active) if self.active else None,
            "val_tolerance": VAL_TOLERANCE,
        }

    def summary(self) -> str:
        c, a = self.candidate, self.active
        if c is None or a is None:
            return "; ".join(self.reasons)
        parts = [f"val nats/char {a.val_nats:.4f} -> {c.val_nats:.4f}"]
        if c.up_ll is not None and a.up_ll is not None:
            parts.append(f"upvoted ll/char {a.up_ll:.4f} -> {c.up_ll:.4f}")
        if c.down_ll is not None and a.down_ll is not None:
            parts.append(f"downvoted ll/char {a.down_ll:.4f} -> {c.down_ll:.4f}")
        verdict = "promoted" if self.passed else "rejected: " + "; ".join(self.reasons)
        return f"{', '.join(parts)} ({verdict})"


def judge(candidate: Scores, active: Scores, *, tolerance: float = VAL_TOLERANCE) -> GateResult:
    reasons = []
    if not candidate.val_nats <= active.val_nats + tolerance:
        reasons.append(
            f"val nats/char {candidate.val_nats:.4f} is worse than the active "
            f"{active.val_nats:.4f} + {tolerance}"
        )
    if candidate.up_ll is None or active.up_ll is None:
        reasons.append("no held-out upvoted captions to judge by (rate more memes)")
    elif not candidate.up_ll > active.up_ll:
        reasons.append(
            f"upvoted captions are not more likely ({candidate.up_ll:.4f} <= {active.up_ll:.4f})"
        )
    c_down, a_down = candidate.down_ll, active.down_ll
    if c_down is not None and a_down is not None and c_down > a_down:
        reasons.append(f"downvoted captions became more likely ({c_down:.4f} > {a_down:.4f})")
    return GateResult(not reasons, reasons, candidate, active)
