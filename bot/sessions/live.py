"""Live events over Redis pub/sub that outlive a Redis restart or a Sentinel failover.

A pub/sub subscription lives on one connection. redis-py reconnects and resubscribes by itself
within its retry budget (the server confirms each channel again), and raises once that is spent,
which used to end the push task: a customer's widget or an agent's console silently stopped
receiving agent messages. `events` (and `follow` over it) subscribes again (with backoff) when
redis-py gives up, and in both cases sends `{"type": "resync"}`: whatever was published while Redis
was away is gone from pub/sub (it is in the stored conversation, which the client reloads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
RESYNC = {"type": "resync"}


async def events(redis: Any, channels: list[str], first_delay_s: float = 0.25,
                 max_delay_s: float = 5.0) -> AsyncGenerator[dict, None]:
    """Each JSON event published on `channels`, and RESYNC after a lost connection, for as long as
    the caller iterates (the subscription is closed with the iterator: `contextlib.aclosing`)."""
    delay, lost = first_delay_s, False
    while True:
        _raise_if_cancelled()
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(*channels)
            if lost:
                log.info("live events: subscribed again after a lost Redis connection")
                yield dict(RESYNC)
            delay, lost = first_delay_s, False
            confirmed: set[str] = set()
            async for msg in pubsub.listen():
                _raise_if_cancelled()
                if msg.get("type") == "message":
                    yield json.loads(msg["data"])
                elif msg.get("type") == "subscribe":
                    channel = _text(msg.get("channel"))
                    if channel in confirmed and channel == channels[0]:  # redis-py resubscribed
                        log.info("live events: Redis connection restored; resubscribed")
                        yield dict(RESYNC)
                    confirmed.add(channel)
            lost = True  # listen() only ends when the connection went away quietly
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if not lost:
                log.warning("live events: Redis connection lost (%s); subscribing again", type(exc).__name__)
            lost = True
        finally:
            # Exception, not BaseException: a cancellation that arrives here still ends the task.
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)


async def follow(redis: Any, channels: list[str], on_event: Callable[[dict], Awaitable[None]],
                 first_delay_s: float = 0.25, max_delay_s: float = 5.0) -> None:
    """Call `on_event` with each of `events(...)`, until cancelled (or `on_event` raises)."""
    async with contextlib.aclosing(events(redis, channels, first_delay_s, max_delay_s)) as stream:
        async for event in stream:
            await on_event(event)


def _raise_if_cancelled() -> None:
    """End the task if it was cancelled and yet runs on. On Python 3.11, `asyncio.wait_for` inside
    redis-py swallows a cancellation that arrives as its inner read completes (CPython gh-86296);
    without this check the subscription would listen, or resubscribe, for ever, and the process
    could not exit (asyncio's runner waits for every task it cancelled)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
