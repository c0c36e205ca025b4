"""Stopping the bot on SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop), reliably.

Leaving it to `asyncio.run`, which cancels the main task once on Ctrl-C, is not enough on
Python 3.11: `asyncio.wait_for` swallows a cancellation that lands as its inner future
completes (fixed in 3.12), and discord.py's `connect()` awaits the gateway handshake through
`wait_for`. A Ctrl-C right after connecting then left the bot running. Here a signal sets an
event, and the serving task is cancelled again until it has really stopped."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from memebot.logs import get_logger

log = get_logger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
RECANCEL_EVERY = 1.0  # seconds between cancellations of a task that swallowed one


class StopSignals:
    """While installed, the first SIGINT/SIGTERM sets `stop` (and `signum`); a second one gets
    the default action (KeyboardInterrupt, or termination): the way to force a stuck stop."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.signum: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, self._received, sig)
            except NotImplementedError:  # Windows' event loops: asyncio.run's Ctrl-C only
                return
            self._loop = loop
            self._previous[sig] = previous

    def uninstall(self) -> None:
        self._release(forcing=False)
        self._previous.clear()

    def _release(self, *, forcing: bool) -> None:
        if self._loop is None:
            return
        for sig, previous in self._previous.items():
            self._loop.remove_signal_handler(sig)
            # asyncio would leave SIG_DFL; put back what was there (asyncio.run's own Ctrl-C
            # handler, a caller's SIGTERM handler), except that a forcing Ctrl-C must raise
            # at once rather than cancel once more
            forced = forcing and sig == signal.SIGINT
            signal.signal(sig, signal.default_int_handler if forced else previous)

    def _received(self, sig: int) -> None:
        self.signum = sig
        self.stop.set()
        self._release(forcing=True)  # a second signal forces
        again = "Ctrl-C" if sig == signal.SIGINT else signal.Signals(sig).name
        log.info("%s: stopping the bot (%s again to force)", signal.Signals(sig).name, again)

    def __enter__(self) -> StopSignals:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


async def run_until_stopped(
    run: Callable[[], Awaitable[None]], stop: asyncio.Event, *, every: float = RECANCEL_EVERY
) -> bool:
    """Runs `run()` until it returns (False) or `stop` is set (True). On stop its task is
    cancelled, and cancelled again every `every` seconds while it keeps going (a swallowed
    cancellation); errors it raises on the way out are raised."""
    task = asyncio.ensure_future(run())
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done() and not stop.is_set():
            task.cancel()  # we are cancelled ourselves: take the task along
    if task.done() and not stop.is_set():
        task.result()
        return False
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    if not task.cancelled():
        task.result()  # a real error while stopping (the task finished rather than cancelled)
    return True
