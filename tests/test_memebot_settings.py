from __future__ import annotations

import pytest

from memebot.errors import UsageError
from memebot.settings import Settings


def test_defaults_are_embedded() -> None:
    s = Settings.from_env({})
    assert s.decoder == "auto" and s.decode_threads == 0
    assert s.model_dir.name == "default" and s.engine_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"MEMEBOT_DECODER": "numpy"}, "decoder", "numpy"),
        ({"MEMEBOT_DECODER": "Kernel"}, "decoder", "kernel"),
        ({"MEMEBOT_DECODE_THREADS": "1"}, "decode_threads", 1),
        ({"MEMEBOT_DECODE_THREADS": "0"}, "decode_threads", 0),
        ({"MEMEBOT_MAX_BATCH": "64"}, "max_batch_rows", 64),
        ({"MEMEBOT_ACCESS_LOG": "yes"}, "access_log", True),
    ],
)
def test_values_are_read(env: dict[str, str], field: str, value: object) -> None:
    assert getattr(Settings.from_env(env), field) == value


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MEMEBOT_DECODER": "gpu"}, "MEMEBOT_DECODER='gpu': choose one of auto, kernel, numpy"),
        ({"MEMEBOT_DECODE_THREADS": "-1"}, "MEMEBOT_DECODE_THREADS='-1': must be at least 0"),
        ({"MEMEBOT_DECODE_THREADS": "two"}, "MEMEBOT_DECODE_THREADS='two': expected an integer"),
        ({"MEMEBOT_MAX_BATCH": "0"}, "MEMEBOT_MAX_BATCH='0': must be at least 1"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError) as e:
        Settings.from_env(env)
    assert str(e.value) == needle
