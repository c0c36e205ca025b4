from __future__ import annotations

from pathlib import Path

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
        ({"MEMEBOT_DECODER": "TF"}, "decoder", "tf"),
        ({"MEMEBOT_DECODE_THREADS": "1"}, "decode_threads", 1),
        ({"MEMEBOT_DECODE_THREADS": "0"}, "decode_threads", 0),
        ({"MEMEBOT_MAX_BATCH": "64"}, "max_batch_rows", 64),
        ({"MEMEBOT_ACCESS_LOG": "yes"}, "access_log", True),
        ({"MEMEBOT_ACCESS_LOG": ""}, "access_log", False),  # empty: the default
        ({"MEMEBOT_IMAGE_FORMAT": "PNG"}, "image_format", "png"),
        ({"MEMEBOT_REQUEST_TIMEOUT": "2.5"}, "request_timeout", 2.5),
        ({"MEMEBOT_BODY_TIMEOUT": "1"}, "body_timeout", 1.0),
        ({"MEMEBOT_MAX_UPLOAD_BYTES": "4096"}, "max_upload_bytes", 4096),
        ({"MEMEBOT_ENGINE_URL": "http://engine:80/"}, "engine_url", "http://engine:80"),
        ({"MEMEBOT_DISCORD_GUILDS": "12, 34"}, "discord_guilds", (12, 34)),
        ({"MEMEBOT_DISCORD_GUILDS": ""}, "discord_guilds", ()),
        ({"MEMEBOT_SHARDS": "3"}, "shards", 3),
        ({"MEMEBOT_GUILD_RETENTION_DAYS": "0.5"}, "guild_retention_days", 0.5),
        (
            {"MEMEBOT_DATABASE_URL": "postgresql+asyncpg://x/y"},
            "database_url",
            "postgresql+asyncpg://x/y",
        ),
        ({"MEMEBOT_DATA_DIR": "/d"}, "images_dir", Path("/d/templates/img")),
        ({"XDG_CACHE_HOME": "/c"}, "cache_dir", Path("/c/memebot")),
        ({"MEMEBOT_VOTE_UP": "<:up:1234567890123>"}, "vote_up", "<:up:1234567890123>"),
        (
            {"MEMEBOT_VOTE_UP": " up_2:12345678901234567890 "},
            "vote_up",
            "up_2:12345678901234567890",
        ),
        ({"MEMEBOT_VOTE_DOWN": "<a:no:1234567890123>"}, "vote_down", "<a:no:1234567890123>"),
        ({"MEMEBOT_VOTE_UP": "1\ufe0f\u20e3"}, "vote_up", "1\ufe0f\u20e3"),  # keycap one
        ({"MEMEBOT_VOTE_DOWN": "\u2764\ufe0f"}, "vote_down", "\u2764\ufe0f"),  # red heart
    ],
)
def test_values_are_read(env: dict[str, str], field: str, value: object) -> None:
    assert getattr(Settings.from_env(env), field) == value


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        (
            {"MEMEBOT_DECODER": "gpu"},
            "MEMEBOT_DECODER='gpu': choose one of auto, kernel, numpy, tf",
        ),
        ({"MEMEBOT_DECODE_THREADS": "-1"}, "MEMEBOT_DECODE_THREADS='-1': must be at least 0"),
        ({"MEMEBOT_DECODE_THREADS": "two"}, "MEMEBOT_DECODE_THREADS='two': expected an integer"),
        ({"MEMEBOT_MAX_BATCH": "0"}, "MEMEBOT_MAX_BATCH='0': must be at least 1"),
        ({"MEMEBOT_REQUEST_TIMEOUT": "nan"}, "MEMEBOT_REQUEST_TIMEOUT='nan': expected a finite"),
        ({"MEMEBOT_REQUEST_TIMEOUT": "inf"}, "MEMEBOT_REQUEST_TIMEOUT='inf': expected a finite"),
        ({"MEMEBOT_REQUEST_TIMEOUT": "0"}, "MEMEBOT_REQUEST_TIMEOUT='0': must be positive"),
        ({"MEMEBOT_BODY_TIMEOUT": "-1"}, "MEMEBOT_BODY_TIMEOUT='-1': must be positive"),
        ({"MEMEBOT_ENGINE_PORT": "99999"}, "MEMEBOT_ENGINE_PORT='99999': must be at most 65535"),
        ({"MEMEBOT_ACCESS_LOG": "maybe"}, "MEMEBOT_ACCESS_LOG='maybe': expected 1 or 0"),
        ({"MEMEBOT_IMAGE_FORMAT": "gif"}, "MEMEBOT_IMAGE_FORMAT='gif': choose one of jpeg, png"),
        ({"MEMEBOT_DISCORD_GUILDS": "1,x"}, "MEMEBOT_DISCORD_GUILDS='1,x': expected an integer"),
        ({"MEMEBOT_SHARDS": "0"}, "MEMEBOT_SHARDS='0': must be at least 1"),
        (
            {"MEMEBOT_GUILD_RETENTION_DAYS": "-1"},
            "MEMEBOT_GUILD_RETENTION_DAYS='-1': must be at least 0",
        ),
        # discord.py would take these for a Unicode emoji's name: no reaction would ever count
        ({"MEMEBOT_VOTE_UP": "upvote:123"}, "MEMEBOT_VOTE_UP='upvote:123': expected a Unicode"),
        ({"MEMEBOT_VOTE_DOWN": "<:down:42>"}, "MEMEBOT_VOTE_DOWN='<:down:42>': expected a"),
        ({"MEMEBOT_VOTE_UP": "thumbsup"}, "MEMEBOT_VOTE_UP='thumbsup': expected a Unicode"),
        ({"MEMEBOT_VOTE_UP": ":+1:"}, "MEMEBOT_VOTE_UP=':+1:': expected a Unicode emoji"),
        ({"MEMEBOT_VOTE_DOWN": "👍"}, "MEMEBOT_VOTE_UP and MEMEBOT_VOTE_DOWN are both 👍"),
        ({"MEMEBOT_ENGINE_URL": "engine:80"}, "MEMEBOT_ENGINE_URL='engine:80': expected an http"),
        (
            {"MEMEBOT_DATABASE_URL": "mysql://u:pw@h/db"},  # the URL is not shown: a password
            "MEMEBOT_DATABASE_URL: expected sqlite+aiosqlite:///<file> or postgresql+asyncpg",
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError) as e:
        Settings.from_env(env)
    assert str(e.value).startswith(needle) and "\n" not in str(e.value)
    assert "pw@" not in str(e.value)


def test_tokens_never_shown() -> None:
    s = Settings.from_env({"DISCORD_TOKEN": "tok-123", "MEMEBOT_ENGINE_TOKEN": "eng-456"})
    assert s.discord_token is not None and s.discord_token.get_secret_value() == "tok-123"
    assert s.engine_token is not None and s.engine_token.get_secret_value() == "eng-456"
    for shown in (repr(s), str(s), s.model_dump_json()):
        assert "tok-123" not in shown and "eng-456" not in shown


def test_process_environment_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("MEMEBOT_MAX_QUEUE=7\nMEMEBOT_SHARDS=2\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEMEBOT_SHARDS", "4")  # the environment wins over .env
    monkeypatch.setenv("MEMEBOT_DISCORD_GUILDS", "5,6")
    s = Settings.from_env()
    assert (s.max_queue, s.shards, s.discord_guilds) == (7, 4, (5, 6))
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'memebot.db'}"
    monkeypatch.setenv("MEMEBOT_REQUEST_TIMEOUT", "inf")
    with pytest.raises(UsageError, match="MEMEBOT_REQUEST_TIMEOUT='inf'"):
        Settings.from_env()


def test_copies_for_tests() -> None:
    s = Settings.from_env({})
    t = s.model_copy(update={"max_queue": 1})
    assert (s.max_queue, t.max_queue) == (256, 1)


def test_a_given_mapping_is_all_that_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """`.ci/run` exports MEMEBOT_CACHE_DIR and MEMEBOT_DATA_DIR: they must not leak into
    settings built from an explicit mapping, yet the process environment still counts."""
    monkeypatch.setenv("MEMEBOT_CACHE_DIR", "/from/the/process")
    monkeypatch.setenv("MEMEBOT_MAX_QUEUE", "7")
    s = Settings.from_env({"XDG_CACHE_HOME": "/c"})
    assert s.cache_dir == Path("/c/memebot") and s.max_queue == 256
    process = Settings.from_env()
    assert process.cache_dir == Path("/from/the/process") and process.max_queue == 7
