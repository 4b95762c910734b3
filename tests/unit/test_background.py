"""bot.background: the owner of the app's background tasks ends them at shutdown, even one that
swallows a cancellation (what Python 3.11's asyncio.wait_for does in a race, CPython gh-86296)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from bot import background
from bot.background import TaskSet, cancel_and_wait


async def swallows_first_cancel(log: list[str]) -> None:
    """Loops like a live subscription; the first cancellation is lost, as in the race."""
    swallowed = False
    while True:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if swallowed:
                log.append("ended")
                raise
            swallowed = True
            log.append("swallowed")


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "RECANCEL_S", 0.05)
    log: list[str] = []
    task = asyncio.create_task(swallows_first_cancel(log))
    await asyncio.sleep(0.02)
    assert await cancel_and_wait([task], timeout_s=2) == set()
    assert task.cancelled() and log == ["swallowed", "ended"]


async def test_one_that_never_stops_is_reported_not_waited_for(caplog: pytest.LogCaptureFixture) -> None:
    stubborn = True

    async def ignores_cancellation() -> None:
        while stubborn:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(1)

    task = asyncio.create_task(ignores_cancellation(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="bot.background"):
        assert await cancel_and_wait([task], timeout_s=0.2) == {task}
    assert "stubborn did not stop" in caplog.text
    stubborn = False
    task.cancel()
    await asyncio.wait({task})


async def test_shutdown_lets_turns_finish_then_cancel_subscriptions(
        caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet("test task")
    done: list[str] = []

    async def turn() -> None:
        await asyncio.sleep(0.05)
        done.append("turn")

    async def subscription() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise ConnectionResetError("client went away")

    tasks.spawn(turn())
    listener = tasks.spawn(subscription(), endless=True)
    tasks.spawn(fails(), quiet=(OSError,))
    with caplog.at_level(logging.DEBUG, logger="bot.background"):
        await tasks.aclose(drain_s=5, timeout_s=1)
    assert done == ["turn"] and listener.cancelled() and len(tasks) == 0
    assert "test task failed" not in caplog.text  # the quiet failure is logged at debug level only
    with pytest.raises(RuntimeError):
        tasks.spawn(turn())
