"""Inbound rate limits counted in Redis, so that every replica shares them.

One fixed window per key: a Lua script INCRs the key and gives it its expiry on the first hit, in
one atomic step (no key is ever left without a TTL, whatever crashes). Over the limit a request gets
HTTP 429 `{"error": "rate_limited", "detail", "retry_after", "limit"}` with a `Retry-After` header; a
WebSocket or socket.io message gets the same body as an error frame and the socket stays open.

Limits (`Settings.rate_limit`): per client address on every inbound message endpoint (`ip`), per
platform webhook address (`webhook`), per console log-in address (`login`) and per conversation
(`conversation`), whatever the channel. The client address is the TCP peer, or, when the peer is one
of `Settings.trusted_proxies`, the right-most address in X-Forwarded-For that is not a trusted proxy.
IPv6 clients are counted per /64 (one subscriber's network), not per address.

The counting itself is a `WindowCounter`'s (bot/sessions/counters.py keeps them in Redis). If Redis
does not answer, the limiter fails open: the request goes through, and the failure is
logged (at most every 30 s) and counted in `supportbot_degraded_total{dependency="rate_limiter"}`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from starlette.types import ASGIApp, Receive, Scope, Send

from bot.channels import REGISTRY
from bot.config import RateLimitSettings
from bot.observability import Metrics
from bot.sessions.errors import StoreUnavailable
from bot.web.errors import ApiError
from bot.web.limits import reply

log = logging.getLogger(__name__)

WINDOW_S = 60
REDIS_TIMEOUT_S = 0.5  # a limiter that waits on a dead Redis would refuse customers by slowness
WARN_EVERY_S = 30.0


MESSAGES = {
    "ip": "too many messages from your address",
    "conversation": "too many messages in this conversation",
    "webhook": "too many webhook calls from this address",
    "login": "too many log-in attempts from this address",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/-]")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimited(ApiError):
    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__(429, "rate_limited", f"{MESSAGES[limit]}; retry in {retry_after} s",
                         headers={"Retry-After": str(retry_after)},
                         extra={"retry_after": retry_after, "limit": limit})
        self.limit, self.retry_after = limit, retry_after


@runtime_checkable
class WindowCounter(Protocol):
    async def hit(self, key: str, window_s: float) -> tuple[int, int]:
        """Count one hit on `key`: (hits in the current window, ms until it ends); raises
        StoreUnavailable when the counts cannot be reached."""
        ...


class Limiter:
    def __init__(self, counter: WindowCounter, prefix: str, settings: RateLimitSettings,
                 metrics: Metrics, trusted_proxies: list[str] | tuple[str, ...] = (),
                 window_s: int = WINDOW_S) -> None:
        self.prefix = prefix
        self.settings = settings
        self.metrics = metrics
        self.window_s = window_s
        self.trusted: list[Network] = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self.counter = counter
        self._warned_at = -WARN_EVERY_S

    def limit(self, kind: str) -> int:
        s = self.settings
        return {"ip": s.per_ip_per_minute, "conversation": s.per_conversation_per_minute,
                "webhook": s.webhook_per_ip_per_minute, "login": s.login_per_ip_per_minute}[kind]

    async def check(self, kind: str, ident: str, channel: str) -> None:
        """Count one hit of `ident` against the `kind` limit; RateLimited when it is over."""
        limit = self.limit(kind)
        if not self.settings.enabled or limit <= 0:
            return
        key = f"{self.prefix}:rl:{kind}:{_UNSAFE.sub('_', ident)[:128]}"
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                count, ttl_ms = await self.counter.hit(key, self.window_s)
        except (StoreUnavailable, OSError, TimeoutError) as exc:
            self._failed_open(exc)
            return
        if count > limit:
            self.metrics.rate_limited.labels(kind, channel).inc()
            raise RateLimited(kind, max(1, math.ceil(ttl_ms / 1000)))

    async def message(self, client: str, conversation_id: str, channel: str) -> None:
        """A customer message: its address's limit, then its conversation's."""
        await self.check("ip", client, channel)
        await self.check("conversation", conversation_id, channel)

    def _failed_open(self, exc: BaseException) -> None:
        self.metrics.degraded.labels("rate_limiter").inc()
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate limiter cannot reach Redis (%s); letting requests through",
                        type(exc.__cause__ or exc).__name__)

    # -- who is calling -----------------------------------------------------------------------

    def client_address(self, scope: Scope) -> str:
        """The address limits count against (see the module docstring)."""
        peer = (scope.get("client") or ("unknown", 0))[0]
        if self.trusted and self._trusted(peer):
            forwarded = ",".join(v.decode("latin-1") for k, v in scope.get("headers") or []
                                 if k == b"x-forwarded-for")
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            for hop in reversed(hops):
                if _ip(hop) is None:
                    break  # garbage a client wrote: the hops right of it were checked already
                if not self._trusted(hop):
                    return _bucket(hop)
            else:
                if hops:  # every hop is one of our proxies
                    return _bucket(hops[0])
        return _bucket(peer)

    def _trusted(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.trusted)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _bucket(address: str) -> str:
    """IPv4 addresses as they are, IPv6 ones by their /64, anything else (test clients) verbatim."""
    ip = _ip(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


# Inbound endpoints that are limited per client address before anything else runs (the body is not
# even read): (methods or None for all, path pattern, limit kind, channel label or None for the
# pattern's first group).
RULES: list[tuple[frozenset[str] | None, re.Pattern[str], str, str | None]] = [
    (frozenset({"POST"}), re.compile(r"^/api/v1/conversations(?:/[^/]+/(?:messages|attachments))?$"), "ip",
     "web"),
    (frozenset({"POST"}), re.compile(r"^/webhooks/rest/webhook$"), "ip", "rest"),
    (frozenset({"POST"}), re.compile(r"^/model/parse$"), "ip", "parse"),
    (None, re.compile(r"^/webhooks/([^/]+)$"), "webhook", None),
    (frozenset({"POST"}), re.compile(r"^/integrations/chatwoot/webhook$"), "webhook", "chatwoot"),
    (frozenset({"POST"}), re.compile(r"^/console/api/login$"), "login", "console"),
]


class RateLimit:
    """ASGI middleware: the per-address limits of RULES (per-conversation limits need the parsed
    message, so the routes apply those)."""

    def __init__(self, app: ASGIApp, limiter: Callable[[], Limiter | None]) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.limiter() if scope["type"] == "http" else None
        if limiter is not None:
            for methods, pattern, kind, channel in RULES:
                m = pattern.match(scope["path"])
                if m and (methods is None or scope["method"] in methods):
                    if channel is None:  # a metric label: only names we know, never what the URL says
                        channel = m.group(1) if m.group(1) in REGISTRY else "other"
                    try:
                        await limiter.check(kind, limiter.client_address(scope), channel)
                    except RateLimited as exc:
                        limiter.metrics.errors.labels(exc.code).inc()
                        await reply(send, exc.status, exc.body(), exc.headers)
                        return
                    break
        await self.app(scope, receive, send)
