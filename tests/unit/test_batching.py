"""Micro-batching: messages that arrive while their model is busy share its next call."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot.batching import MicroBatcher
from bot.inference import Busy, InferencePool


class Model:
    """Doubles its inputs; the first call blocks until released, so that others pile up."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.release = threading.Event()

    def __call__(self, key: str, items: list[int]) -> list[int]:
        self.batches.append((key, list(items)))
        if len(self.batches) == 1:
            self.release.wait(10)
        if -1 in items:
            raise ValueError("model failed")
        return [2 * i for i in items]


async def wait_for_first_call(model: Model) -> None:
    for _ in range(200):
        if model.batches:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the model was never called")


async def test_an_idle_model_runs_a_message_at_once_and_later_ones_go_together() -> None:
    pool, model = InferencePool(2, 64), Model()
    batcher: MicroBatcher[str, int, int] = MicroBatcher(pool, model, max_batch=16)
    first = asyncio.create_task(batcher.submit("en", 1))
    await wait_for_first_call(model)
    rest = [asyncio.create_task(batcher.submit("en", i)) for i in range(2, 7)]
    await asyncio.sleep(0.05)
    model.release.set()
    assert await first == 2
    assert await asyncio.gather(*rest) == [4, 6, 8, 10, 12]  # each caller gets its own result
    assert model.batches == [("en", [1]), ("en", [2, 3, 4, 5, 6])]
    pool.close()


async def test_batches_are_capped_and_keys_never_mix() -> None:
    pool, model = InferencePool(2, 64), Model()
    batcher: MicroBatcher[str, int, int] = MicroBatcher(pool, model, max_batch=3)
    first = asyncio.create_task(batcher.submit("en", 0))
    await wait_for_first_call(model)
    english = [asyncio.create_task(batcher.submit("en", i)) for i in range(1, 8)]
    chinese = asyncio.create_task(batcher.submit("zh", 100))
    assert await chinese == 200  # its own model is idle: it does not wait for English
    model.release.set()
    await asyncio.gather(first, *english)
    sizes = [len(items) for key, items in model.batches if key == "en"]
    assert sizes == [1, 3, 3, 1]
    assert ("zh", [100]) in model.batches
    pool.close()


async def test_a_failing_item_fails_alone_and_its_batch_neighbours_are_retried() -> None:
    pool, model = InferencePool(2, 64), Model()
    batcher: MicroBatcher[str, int, int] = MicroBatcher(pool, model, max_batch=16)
    first = asyncio.create_task(batcher.submit("en", 1))
    await wait_for_first_call(model)
    neighbour, doomed = (asyncio.create_task(batcher.submit("en", i)) for i in (2, -1))
    await asyncio.sleep(0.05)
    model.release.set()
    assert await first == 2
    assert await neighbour == 4  # its batch failed; alone, it is answered
    with pytest.raises(ValueError, match="model failed"):
        await doomed
    assert await batcher.submit("en", 5) == 10  # the batcher keeps working
    pool.close()


async def test_a_full_queue_answers_busy_at_once() -> None:
    pool, model = InferencePool(1, 0), Model()
    batcher: MicroBatcher[str, int, int] = MicroBatcher(pool, model, max_batch=4, capacity=2)
    first = asyncio.create_task(batcher.submit("en", 1))
    await wait_for_first_call(model)
    waiting = [asyncio.create_task(batcher.submit("en", i)) for i in (2, 3)]
    await asyncio.sleep(0.01)
    with pytest.raises(Busy):
        await batcher.submit("en", 4)
    model.release.set()
    assert await asyncio.gather(first, *waiting) == [2, 4, 6]
    pool.close()


async def test_a_caller_that_gives_up_is_left_out_of_the_batch() -> None:
    pool, model = InferencePool(2, 64), Model()
    batcher: MicroBatcher[str, int, int] = MicroBatcher(pool, model, max_batch=16)
    first = asyncio.create_task(batcher.submit("en", 1))
    await wait_for_first_call(model)
    gone = asyncio.create_task(batcher.submit("en", 2))
    kept = asyncio.create_task(batcher.submit("en", 3))
    await asyncio.sleep(0.01)
    gone.cancel()
    model.release.set()
    assert await first == 2 and await kept == 6
    assert model.batches[1] == ("en", [3])
    pool.close()
