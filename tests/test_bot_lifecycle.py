"""Stopping the bot on a signal even when a cancellation is swallowed (bot/lifecycle.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from bot.lifecycle import StopSignals, run_until_stopped


async def _set_soon(event: asyncio.Event, delay: float = 0.05) -> None:
    await asyncio.sleep(delay)
    event.set()


def test_a_run_that_returns_is_not_a_stop() -> None:
    async def go() -> bool:
        async def run() -> None:
            await asyncio.sleep(0.01)

        return await run_until_stopped(run, asyncio.Event())

    assert asyncio.run(go()) is False


def test_an_error_of_the_run_is_raised() -> None:
    async def go() -> bool:
        async def run() -> None:
            raise LookupError("gateway")

        return await run_until_stopped(run, asyncio.Event())

    with pytest.raises(LookupError, match="gateway"):
        asyncio.run(go())


def test_stop_cancels_the_run_and_lets_it_clean_up() -> None:
    cleaned: list[str] = []

    async def go() -> bool:
        stop = asyncio.Event()

        async def run() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                cleaned.append("closed")

        setter = asyncio.create_task(_set_soon(stop))
        stopped = await run_until_stopped(run, stop)
        await setter
        return stopped

    assert asyncio.run(go()) is True
    assert cleaned == ["closed"]


def test_a_swallowed_cancellation_is_repeated_until_the_run_stops() -> None:
    """What discord.py's gateway handshake does on Python 3.11 (see the next test): the first
    cancellation is eaten and the run goes on; it must still stop."""
    swallowed: list[int] = []

    async def go() -> bool:
        stop = asyncio.Event()

        async def run() -> None:
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    if len(swallowed) < 2:
                        swallowed.append(1)
                        continue
                    raise

        setter = asyncio.create_task(_set_soon(stop))
        stopped = await asyncio.wait_for(run_until_stopped(run, stop, every=0.05), 10)
        await setter
        return stopped

    assert asyncio.run(go()) is True
    assert len(swallowed) == 2  # cancelled three times in all


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio.wait_for was fixed in 3.12")
def test_python_311_wait_for_swallows_a_cancellation_as_its_future_completes() -> None:
    """The cause, shown without discord.py: a cancellation of a task in `wait_for` that lands in
    the same loop step as the awaited future's result is lost, the task goes on."""

    async def go() -> str:
        inner = asyncio.get_running_loop().create_future()

        async def handshake() -> str:
            await asyncio.wait_for(inner, timeout=60)
            return "went on polling"

        task = asyncio.create_task(handshake())
        await asyncio.sleep(0)  # the task now waits in wait_for
        inner.set_result(None)
        task.cancel()
        return await task

    assert asyncio.run(go()) == "went on polling"


def test_stop_signals_set_stop_once_then_give_back_the_default_handlers() -> None:
    previous_term = signal.getsignal(signal.SIGTERM)

    async def go() -> int | None:
        with StopSignals() as signals:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(signals.stop.wait(), 10)
            # after the first signal a second one is not caught: Ctrl-C raises again
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
            assert signal.getsignal(signal.SIGTERM) == previous_term
            return signals.signum

    assert asyncio.run(go()) == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == previous_term


def test_stop_signals_restore_a_callers_sigterm_handler() -> None:
    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not while installed")

    old = signal.signal(signal.SIGTERM, mine)
    try:

        async def go() -> None:
            with StopSignals():
                assert signal.getsignal(signal.SIGTERM) is not mine

        asyncio.run(go())
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)
