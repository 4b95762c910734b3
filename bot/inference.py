"""Model calls off the event loop: a small thread pool behind a bounded queue.

When the queue is full the caller gets `Busy` at once (a 503 to the client, who retries with the
same message id) instead of piling up latency for everyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Busy(RuntimeError):
    pass


class InferencePool:
    def __init__(self, workers: int = 2, queue: int = 64) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        self._slots = asyncio.Semaphore(workers + queue)
        self.capacity = workers + queue

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self._slots.locked():
            raise Busy("inference queue is full")
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
