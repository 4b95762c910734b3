"""What the Redis-backed stores raise instead of redis-py's errors, so that the layers above never
import redis: the web layer answers `StoreUnavailable` with 503 and `LockTimeout` with 503
`conversation_busy` (bot/web/errors.py).

Every class that owns Redis keys (the session store, the hand-off queue, the console sessions, the
rate-limit counters, the review log) marks itself with `@raises_unavailable`: a lost connection or
a timeout, once the client's own retries are spent, leaves each of its coroutine methods as
`StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
T = TypeVar("T", bound=type)


class StoreUnavailable(Exception):
    """Redis did not answer within the client's retry budget (a restart, a failover, a network
    split); the operation may be retried (a turn: with the same message id)."""


class LockTimeout(RuntimeError):
    """The conversation stayed busy longer than the configured wait."""


@contextlib.contextmanager
def unavailable() -> Iterator[None]:
    """Redis connection and timeout errors inside the block become `StoreUnavailable`."""
    try:
        yield
    except REDIS_DOWN as exc:
        raise StoreUnavailable(str(exc) or type(exc).__name__) from exc


def _translated(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with unavailable():
            return await method(*args, **kwargs)

    return wrapper


def raises_unavailable(cls: T) -> T:
    """Class decorator: every public coroutine method of `cls` raises `StoreUnavailable` where
    redis-py would raise a connection or timeout error (other methods translate by themselves,
    with `unavailable()`)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _translated(member))
    return cls
