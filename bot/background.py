"""Background tasks with an owner, so that shutdown can end them and the process can exit.

asyncio's runner cancels whatever is still running when the server returns, once, and then waits
for it without a time limit. On Python 3.11 `asyncio.wait_for` (which redis-py and python-engineio
use) swallows a cancellation that arrives in the same loop turn as its inner await completes
(CPython gh-86296): a looping task, such as a live pub/sub subscription, then runs on and the
process never exits. So every task the app starts belongs to a `TaskSet`, which at shutdown lets
the work finish for a grace period, then cancels what is left, again while it keeps running, and
waits for it, with a time limit.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

RECANCEL_S = 1.0  # a cancelled task gets this long to clean up before it is cancelled again


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]],
                          timeout_s: float = 5.0) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait until they have finished, cancelling again every `RECANCEL_S` while
    one still runs (a swallowed cancellation, see the module docstring). Returns the tasks still
    running after `timeout_s`, having logged where they are."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))
    for task in pending:
        stack = io.StringIO()
        task.print_stack(limit=8, file=stack)
        log.error("task %s did not stop within %.1f s of being cancelled:\n%s", task.get_name(),
                  timeout_s, stack.getvalue())
    return pending


class TaskSet:
    """The tasks one owner started: keeps them referenced (the loop holds only weak references),
    logs their failures, and ends them at shutdown (`aclose`)."""

    def __init__(self, name: str, logger: logging.Logger = log) -> None:
        self.name = name  # what the tasks do, for the logs: "<name> failed"
        self.log = logger
        self._tasks: set[asyncio.Task[Any]] = set()
        self._endless: set[asyncio.Task[Any]] = set()  # run until cancelled: not drained
        self._quiet: dict[asyncio.Task[Any], tuple[type[BaseException], ...]] = {}
        self.closing = False

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None,
              quiet: tuple[type[BaseException], ...] = (), endless: bool = False) -> asyncio.Task[T]:
        """Start `coro` as a task of this set. A failure with one of the `quiet` exceptions (a
        client that went away) is expected and logged at debug level only. An `endless` task (a
        live subscription) runs until cancelled: shutdown does not wait for it to finish."""
        if self.closing:
            coro.close()
            raise RuntimeError(f"{self.name}: shutting down, no new tasks")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        if endless:
            self._endless.add(task)
        if quiet:
            self._quiet[task] = quiet
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._endless.discard(task)
        quiet = self._quiet.pop(task, ())
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if isinstance(exc, quiet):
            self.log.debug("%s (%s) ended: %r", self.name, task.get_name(), exc)
        else:
            self.log.error("%s failed", self.name, exc_info=exc)

    async def stop(self, *tasks: asyncio.Task[Any], timeout_s: float = 5.0) -> None:
        """Cancel these tasks and wait for them: their owner returns only once they are gone (a
        pub/sub connection closed, not left to the garbage collector)."""
        await cancel_and_wait(tasks, timeout_s)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Let the running tasks (in-flight turns), and those they start, finish; for up to
        `timeout_s` (None: no limit, for tests). Endless ones are not waited for."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while work := self._tasks - self._endless:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            await asyncio.wait(work, timeout=left)

    async def aclose(self, drain_s: float | None = 0.0, timeout_s: float = 5.0) -> None:
        """Shutdown: `drain` for `drain_s` (None: no limit), then refuse new tasks and cancel and
        await the rest."""
        await self.drain(drain_s)
        self.closing = True
        if self._tasks:
            self.log.info("%s: cancelling %d task(s) at shutdown", self.name, len(self._tasks))
            await cancel_and_wait(set(self._tasks), timeout_s)
