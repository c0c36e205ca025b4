"""The engine's event loop choice (MEMEBOT_EVENT_LOOP; memebot/eventloop.py)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from memebot.errors import UsageError
from memebot.eventloop import new_event_loop


async def _echo_over_tcp() -> bytes:
    """A loopback round trip: the loop's transports work, not just its construction."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"meme\n")
        line = await reader.readline()
        writer.close()
        return line


@pytest.mark.parametrize("choice", ["auto", "uvloop", "asyncio"])
def test_each_choice_gives_a_working_loop(choice: str) -> None:
    loop, name = new_event_loop(choice)  # type: ignore[arg-type]
    try:
        if choice == "asyncio":
            assert name == "asyncio"
            assert type(loop).__module__.startswith("asyncio")
        else:  # uvloop is a dependency wherever it has a build (not on Windows)
            has_uvloop = sys.platform != "win32"
            assert name == ("uvloop" if has_uvloop else "asyncio")
            assert type(loop).__module__.startswith(name)
        assert loop.run_until_complete(_echo_over_tcp()) == b"MEME\n"
    finally:
        loop.close()


def test_uvloop_asked_for_but_missing_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what `import uvloop` meets when absent
    with pytest.raises(UsageError, match="MEMEBOT_EVENT_LOOP=uvloop: uvloop is not installed"):
        new_event_loop("uvloop")
    loop, name = new_event_loop("auto")  # auto falls back quietly
    loop.close()
    assert name == "asyncio"
