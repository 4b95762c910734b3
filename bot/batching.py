"""Micro-batching: concurrent customers share one forward pass of a model.

A transformer encodes 16 short messages in little more time than one (the matrix products are
wider, the per-call overhead is paid once), so under load the turns waiting for the same model are
sent together. Adaptive, with no timer: a call that finds its model idle runs at once (no added
latency at low load); calls that arrive while a batch is running wait for it and then go together,
up to `max_batch`. benchmarks/batching.py measures what it buys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

from prometheus_client import Histogram

from bot.inference import Busy, InferencePool
from bot.types import Hit, Parse

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741


class MicroBatcher(Generic[K, I, O]):
    """`await submit(key, item)` → `fn(key, [items])[i]`, run in the inference pool.

    Items are grouped by `key` (for example the language, which picks the model), one batch per
    key in flight. At most `capacity` items wait per key; beyond that the caller gets `Busy` at
    once, as with the pool itself (a 503 the client retries with the same message id).
    """

    def __init__(self, pool: InferencePool, fn: Callable[[K, list[I]], list[O]], max_batch: int = 16,
                 capacity: int | None = None, sizes: Histogram | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.pool, self.fn, self.max_batch = pool, fn, max_batch
        self.capacity = capacity if capacity is not None else pool.capacity
        self.sizes = sizes  # observes each batch's size
        self._pending: dict[K, list[tuple[I, asyncio.Future[O]]]] = {}
        self._running: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, item: I) -> O:
        pending = self._pending.setdefault(key, [])
        if len(pending) >= self.capacity:
            raise Busy("inference queue is full")
        future: asyncio.Future[O] = asyncio.get_running_loop().create_future()
        pending.append((item, future))
        if key not in self._running:
            self._running[key] = asyncio.get_running_loop().create_task(self._drain(key))
        return await future

    async def _drain(self, key: K) -> None:
        live: list[tuple[I, asyncio.Future[O]]] = []
        try:
            while pending := self._pending.get(key):
                batch, self._pending[key] = pending[: self.max_batch], pending[self.max_batch:]
                live = [(item, f) for item, f in batch if not f.done()]  # skip callers that gave up
                if not live:
                    continue
                if self.sizes is not None:
                    self.sizes.observe(len(live))
                await self._run(key, live)
        except BaseException:  # cancelled (shutdown): nobody waits forever
            for _, f in live + self._pending.pop(key, []):
                f.cancel()
            raise
        finally:
            self._running.pop(key, None)
            if not self._pending.get(key):
                self._pending.pop(key, None)


    async def _run(self, key: K, live: list[tuple[I, asyncio.Future[O]]]) -> None:
        """One batch; when it fails, each item alone, so one bad message never fails its
        neighbours (only the item that fails by itself gets the error). `Busy` is not retried."""
        try:
            results = await self.pool.run(self.fn, key, [item for item, _ in live])
            if len(results) != len(live):
                raise RuntimeError(f"batch of {len(live)} gave {len(results)} results")
        except Busy as exc:
            _fail(live, exc)
            return
        except Exception as exc:
            if len(live) == 1:
                _fail(live, exc)
                return
            for one in live:
                await self._run(key, [one])
            return
        for (_, f), result in zip(live, results, strict=True):
            if not f.done():
                f.set_result(result)


def _fail(live: list[tuple[I, asyncio.Future[O]]], exc: BaseException) -> None:
    for _, f in live:  # every caller gets the error, none hangs
        if not f.done():
            f.set_exception(exc)


class ModelCalls(Protocol):
    """How the pipeline reaches the intent model and the FAQ index (off the event loop)."""

    async def parse(self, text: str, language: str | None) -> Parse: ...
    async def search(self, text: str, k: int, language: str | None) -> list[Hit]: ...


class DirectCalls:
    """One pool call per message: what `inference_max_batch=1` gives (and the benchmark's baseline)."""

    def __init__(self, pool: InferencePool, nlu: BatchNlu, knowledge: BatchKnowledge) -> None:
        self.pool, self.nlu, self.knowledge = pool, nlu, knowledge

    async def parse(self, text: str, language: str | None) -> Parse:
        return await self.pool.run(self.nlu.parse, text, language)

    async def search(self, text: str, k: int, language: str | None) -> list[Hit]:
        return await self.pool.run(self.knowledge.search, text, k, language)


class BatchedCalls:
    """Concurrent turns' messages go to the intent model and the embedder in shared batches."""

    def __init__(self, pool: InferencePool, nlu: BatchNlu, knowledge: BatchKnowledge, max_batch: int,
                 sizes: Histogram | None = None) -> None:
        self._parse: MicroBatcher[str | None, str, Parse] = MicroBatcher(
            pool, lambda language, texts: nlu.parse_batch(texts, language), max_batch,
            sizes=sizes.labels("nlu") if sizes is not None else None)
        self._search: MicroBatcher[tuple[int, str | None], str, list[Hit]] = MicroBatcher(
            pool, lambda key, texts: knowledge.search_batch(texts, key[0], key[1]), max_batch,
            sizes=sizes.labels("retrieval") if sizes is not None else None)

    async def parse(self, text: str, language: str | None) -> Parse:
        return await self._parse.submit(language, text)

    async def search(self, text: str, k: int, language: str | None) -> list[Hit]:
        return await self._search.submit((k, language), text)


class BatchNlu(Protocol):
    def parse(self, text: str, language: str | None = None) -> Parse: ...
    def parse_batch(self, texts: list[str], language: str | None = None) -> list[Parse]: ...


class BatchKnowledge(Protocol):
    def search(self, text: str, k: int = 3, language: str | None = None) -> list[Hit]: ...
    def search_batch(self, texts: list[str], k: int = 3, language: str | None = None) -> list[list[Hit]]: ...


def model_calls(pool: InferencePool, nlu: BatchNlu, knowledge: BatchKnowledge, max_batch: int,
                sizes: Histogram | None = None) -> ModelCalls:
    if max_batch <= 1:
        return DirectCalls(pool, nlu, knowledge)
    return BatchedCalls(pool, nlu, knowledge, max_batch, sizes)
