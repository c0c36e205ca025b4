"""The engine's event loop: uvloop where installed (the `auto` default), else asyncio's own.

At 64 concurrent clients the engine's event loop thread does the HTTP work for hundreds of
requests a second beside the decoding thread; uvloop (libuv) does that transport work in C.
docs/BENCHMARKS.md has the two side by side; `MEMEBOT_EVENT_LOOP=asyncio` turns it off."""

from __future__ import annotations

import asyncio
from typing import Literal

from memebot.errors import UsageError

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]


def new_event_loop(choice: EventLoopChoice) -> tuple[asyncio.AbstractEventLoop, str]:
    """A new loop for `choice` and the name of what it is ("uvloop" or "asyncio")."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise UsageError(
                    "MEMEBOT_EVENT_LOOP=uvloop: uvloop is not installed (pip install uvloop; "
                    "it has no Windows build)"
                ) from None
        else:
            return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"
