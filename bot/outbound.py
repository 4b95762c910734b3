"""The one retry policy of every outbound HTTP client: the channels' platform APIs and Chatwoot.

Built on tenacity. A call is tried again when the network failed (httpx.TransportError) or when a
`hint` hook reads "again" in the answer: HTTP 429 and 5xx by default (`status_hint`), plus what a
platform adds on top of it (Telegram's flood control, Slack's `ok: false, error: ratelimited`, Meta's
throttling codes answered as 400). Each verdict names a budget: how many tries that kind of failure
gets in all and how the wait grows (`Backoff`). A wait the platform asks for (Retry-After, Telegram's
`parameters.retry_after`) replaces the backoff, capped at MAX_WAIT_S.

When a budget is spent the last outcome is final: a network error is raised, an HTTP error status
raises httpx.HTTPStatusError, and anything else (Slack's HTTP 200 `ok: false`) is returned for the
caller to judge. Any other non-2xx answer is final at once. Lives below both `bot.channels` and
`bot.handoff`, and knows neither.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from bot.observability import redact_url

log = logging.getLogger(__name__)

MAX_WAIT_S = 30.0  # the longest wait a platform's hint may impose on one retry
HTTP = "http"  # the budget of network errors and 429/5xx answers


@dataclass(frozen=True)
class Backoff:
    """How one kind of failure is retried: `attempts` tries in all (the first included), waiting
    `base_s` before the second, doubling each time, times a random 0.5-1.5 with `jitter`."""

    attempts: int = 4
    base_s: float = 0.5
    jitter: bool = True

    def wait(self, tries: int) -> float:
        """The wait after the `tries`-th failure of this kind."""
        delay = self.base_s * 2 ** (tries - 1)
        return delay * (0.5 + random.random()) if self.jitter else delay


@dataclass(frozen=True)
class Again:
    """A hook's verdict on an answer: try again, on `budget`'s account, after `wait_s` seconds (None:
    the budget's backoff). `why` goes into the log line."""

    budget: str = HTTP
    wait_s: float | None = None
    why: str = ""


Hint = Callable[[httpx.Response], Again | None]


class Pacer(Protocol):
    async def wait(self) -> None: ...


def retry_after(resp: httpx.Response) -> float | None:
    """The Retry-After header in seconds (the delta-seconds form), else None."""
    value = resp.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def status_hint(resp: httpx.Response) -> Again | None:
    """The default hook: 429 and 5xx are tried again, after Retry-After when the answer gives one."""
    if resp.status_code == 429 or resp.status_code >= 500:
        return Again(HTTP, retry_after(resp))
    return None


class _Retry(Exception):
    """One failed try that its budget may retry; `final` is what the caller gets when it may not."""

    def __init__(self, again: Again, tries: int, response: httpx.Response | None = None,
                 error: httpx.TransportError | None = None) -> None:
        super().__init__(again.why)
        self.again, self.tries, self.response, self.error = again, tries, response, error

    def final(self) -> httpx.Response:
        if self.error is not None:
            raise self.error
        assert self.response is not None
        self.response.raise_for_status()
        return self.response


def _budgets(**budgets: Backoff) -> Mapping[str, Backoff]:
    return MappingProxyType({HTTP: Backoff(), **budgets})


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)  # looked up at each call: tests replace asyncio.sleep


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one outbound client. `budgets` maps a verdict's budget name to its Backoff (a name
    without one is final); `hint` reads an answer; log lines go to `logger` (the caller's)."""

    budgets: Mapping[str, Backoff] = field(default_factory=_budgets)
    hint: Hint = status_hint
    logger: logging.Logger = log

    @classmethod
    def of(cls, hint: Hint = status_hint, logger: logging.Logger = log, **budgets: Backoff) -> RetryPolicy:
        """A policy whose budgets are the default `http` one plus (or replaced by) `budgets`."""
        return cls(_budgets(**budgets), hint, logger)

    async def request(self, client: httpx.AsyncClient, method: str, url: str, *, limiter: Pacer | None = None,
                      what: str | None = None, **kwargs: Any) -> httpx.Response:
        """`client.request(method, url, **kwargs)` under this policy, each try paced by `limiter`.
        `what` names the call in log lines (default: the method and the URL without its secrets)."""

        async def send() -> httpx.Response:
            if limiter is not None:
                await limiter.wait()
            return await client.request(method, url, **kwargs)

        return await self.call(send, what or f"{method} {redact_url(url)}")

    async def call(self, send: Callable[[], Awaitable[httpx.Response]], what: str) -> httpx.Response:
        tries: dict[str, int] = {}
        retrying = AsyncRetrying(retry=retry_if_exception_type(_Retry), stop=self._spent, wait=self._wait,
                                 before_sleep=lambda state: self._log(state, what), sleep=_sleep,
                                 reraise=True)
        try:
            return await retrying(self._try, send, tries)
        except _Retry as exc:
            failed = exc
        return failed.final()  # outside the except block: the final error has no _Retry context

    async def _try(self, send: Callable[[], Awaitable[httpx.Response]], tries: dict[str, int]
                   ) -> httpx.Response:
        try:
            resp = await send()
        except httpx.TransportError as exc:
            raise self._failed(Again(HTTP, why=type(exc).__name__), tries, error=exc) from exc
        again = self.hint(resp)
        if again is not None and again.budget in self.budgets:
            raise self._failed(again, tries, response=resp)
        resp.raise_for_status()  # any other answer but a 2xx is final
        return resp

    @staticmethod
    def _failed(again: Again, tries: dict[str, int], **outcome: Any) -> _Retry:
        tries[again.budget] = tries.get(again.budget, 0) + 1
        return _Retry(again, tries[again.budget], **outcome)

    @staticmethod
    def _last(state: RetryCallState) -> _Retry:
        assert state.outcome is not None
        exc = state.outcome.exception()
        assert isinstance(exc, _Retry)
        return exc

    def _spent(self, state: RetryCallState) -> bool:
        last = self._last(state)
        return last.tries >= self.budgets[last.again.budget].attempts

    def _wait(self, state: RetryCallState) -> float:
        last = self._last(state)
        if last.again.wait_s is not None:
            return min(last.again.wait_s, MAX_WAIT_S)
        return self.budgets[last.again.budget].wait(last.tries)

    def _log(self, state: RetryCallState, what: str) -> None:
        last, wait = self._last(state), state.upcoming_sleep
        if last.response is None:
            self.logger.warning("%s failed (%s); retrying in %.1fs", what, last.again.why, wait)
            return
        why = f" ({last.again.why})" if last.again.why else ""
        self.logger.warning("%s answered %s%s; retrying in %.1fs", what, last.response.status_code, why, wait)


DEFAULT = RetryPolicy()
