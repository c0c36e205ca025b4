"""Skip a test for a missing service or data set, or fail it under CI (MEMEBOT_REQUIRE_ALL=1,
set by .ci/run), so CI never passes by skipping."""

from __future__ import annotations

import os
from typing import NoReturn

REQUIRE_ALL = os.environ.get("MEMEBOT_REQUIRE_ALL") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    import pytest

    if REQUIRE_ALL:
        pytest.fail(f"MEMEBOT_REQUIRE_ALL=1 but {reason}")
    pytest.skip(reason)
