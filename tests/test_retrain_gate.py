"""The promotion gate's rule, each clause on its own (the slow tests run it on real models)."""

from __future__ import annotations

import pytest

from retrain.gate import Scores, judge

ACTIVE = Scores(val_nats=1.50, up_ll=-1.40, down_ll=-2.00)


@pytest.mark.parametrize(
    ("candidate", "passed", "reason"),
    [
        (Scores(1.50, -1.30, -2.10), True, None),
        (Scores(1.52, -1.30, -2.00), True, None),  # val within +0.02, downvoted equal
        (Scores(1.5201, -1.30, -2.10), False, "val nats/char 1.5201 is worse"),
        (Scores(1.45, -1.40, -2.10), False, "upvoted captions are not more likely"),
        (Scores(1.45, -1.30, -1.99), False, "downvoted captions became more likely"),
        (Scores(1.45, None, -2.10), False, "no held-out upvoted captions"),
        (Scores(1.45, -1.30, None), True, None),  # nothing rated down: that clause holds
    ],
)
def test_each_clause(candidate: Scores, passed: bool, reason: str | None) -> None:
    result = judge(candidate, ACTIVE)
    assert result.passed is passed
    if reason is None:
        assert result.reasons == []
    else:
        assert len(result.reasons) == 1 and reason in result.reasons[0]
    summary = result.summary()
    assert "val nats/char 1.5000 ->" in summary
    assert ("promoted" in summary) is passed


def test_all_failures_are_listed_and_serialisable() -> None:
    result = judge(Scores(2.0, -2.0, -1.0), ACTIVE)
    assert not result.passed and len(result.reasons) == 3
    j = result.to_json()
    assert j["candidate"]["val_nats"] == 2.0 and j["active"]["up_ll"] == -1.40
    assert j["val_tolerance"] == 0.02
