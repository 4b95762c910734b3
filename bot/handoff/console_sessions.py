"""Agent console sessions held in Redis, and the per-account log-in throttle.

Why server-side: a signed cookie cannot be taken back, so logging out, a password change or a
disabled account did not end a session that someone had copied. Here the cookie carries only a
random session id; the record (agent, CSRF token, created, last seen) lives in Redis for
`ttl_s` from log-in (not extended by use: a stolen cookie is worth at most that long), and
deleting it ends the session everywhere at once.

Keys (every replica shares them): `<prefix>:console:session:<sha256(sid)>` a hash, and
`<prefix>:console:agent:<id>:sessions` the set of one agent's session keys, so that all of them can
be ended together. Redis holds only digests of session ids: a copy of its data opens no console.
No command touches two keys (Redis Cluster: they sit in different slots).

Log-in throttle: `<prefix>:console:login-fail:<sha256(username)>` counts attempts for one
account in a fixed window from its first failure; past `max_failures`, attempts are refused until
the window ends, whatever the password and the client's address (the per-address limit is
bot/web/ratelimit.py's). A successful log-in clears the count.

Callers depend on `ConsoleSessions`, the protocol; `RedisConsoleSessions` keeps them in Redis (and
raises `StoreUnavailable` where Redis did not answer).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from bot.sessions.counters import FIXED_WINDOW_HIT
from bot.sessions.errors import raises_unavailable

# Last seen, only on a record that still exists: a plain HSET after the record expired or was
# deleted would bring back a key without a TTL.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'seen', ARGV[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class ConsoleSession:
    """One logged-in console session (the record behind a cookie)."""

    agent_id: int
    csrf: str
    stamp: str  # the agent's credential stamp at log-in: a password changed since ends the session
    created: float
    seen: float


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


class ConsoleSessions(Protocol):
    async def create(self, agent_id: int, stamp: str = "") -> tuple[str, str]: ...
    async def get(self, sid: str) -> ConsoleSession | None: ...
    async def delete(self, sid: str) -> None: ...
    async def end_all_for(self, agent_id: int, keep: str | None = None) -> int: ...
    async def login_attempt(self, username: str) -> int: ...
    async def login_succeeded(self, username: str) -> None: ...


@raises_unavailable
class RedisConsoleSessions:
    def __init__(self, client: aioredis.Redis, prefix: str = "sb", ttl_s: int = 12 * 3600,
                 max_failures: int = 5, failure_window_s: int = 15 * 60, touch_every_s: int = 60) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.max_failures = max_failures
        self.failure_window_s = failure_window_s
        self.touch_every_s = touch_every_s
        self._attempt = client.register_script(FIXED_WINDOW_HIT)
        self._touch = client.register_script(_TOUCH)

    def _key(self, digest: str) -> str:
        return f"{self.prefix}:console:session:{digest}"

    def _agent_key(self, agent_id: int) -> str:
        return f"{self.prefix}:console:agent:{agent_id}:sessions"

    async def create(self, agent_id: int, stamp: str = "") -> tuple[str, str]:
        """A new session for a logged-in agent: (session id for the cookie, CSRF token)."""
        sid, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
        digest = _digest(sid)
        async with self.redis.pipeline(transaction=True) as pipe:  # one key: one slot
            pipe.hset(self._key(digest), mapping={"agent": agent_id, "csrf": csrf, "stamp": stamp,
                                                  "created": now, "seen": now})
            pipe.expire(self._key(digest), self.ttl_s)
            await pipe.execute()
        # The index outlives every session in it (each log-in pushes its expiry out).
        await self.redis.sadd(self._agent_key(agent_id), digest)
        await self.redis.expire(self._agent_key(agent_id), self.ttl_s)
        return sid, csrf

    async def get(self, sid: str) -> ConsoleSession | None:
        """The live session behind `sid`, or None (never existed, expired, logged out, ended)."""
        key = self._key(_digest(sid))
        record = await self.redis.hgetall(key)
        try:
            session = ConsoleSession(int(record["agent"]), record["csrf"], record.get("stamp", ""),
                                     float(record["created"]), float(record["seen"]))
        except (KeyError, ValueError):
            return None
        now = time.time()
        if now - session.seen >= self.touch_every_s:  # not a write per request
            await self._touch(keys=[key], args=[now])
        return session

    async def delete(self, sid: str) -> None:
        """Log out: the record goes at once, so the cookie is worthless even if it was copied."""
        digest = _digest(sid)
        agent = await self.redis.hget(self._key(digest), "agent")
        await self.redis.delete(self._key(digest))
        if agent is not None:
            await self.redis.srem(self._agent_key(int(agent)), digest)

    async def end_all_for(self, agent_id: int, keep: str | None = None) -> int:
        """End every session of one agent (but `keep`'s); returns how many were live."""
        kept = _digest(keep) if keep is not None else None
        ended = 0
        for digest in await self.redis.smembers(self._agent_key(agent_id)):
            if digest == kept:
                continue
            ended += int(await self.redis.delete(self._key(digest)))  # one key a command: cluster-safe
            await self.redis.srem(self._agent_key(agent_id), digest)
        return ended

    # -- log-in throttle per account -----------------------------------------------------------

    def _failures_key(self, username: str) -> str:
        return f"{self.prefix}:console:login-fail:{_digest(username.strip().lower())}"

    async def login_attempt(self, username: str) -> int:
        """Count one log-in attempt for `username` before its password is checked (so concurrent
        guesses count too); returns 0 to go ahead, else the seconds until attempts are allowed."""
        count, ttl_ms = await self._attempt(keys=[self._failures_key(username)],
                                            args=[self.failure_window_s * 1000])
        if int(count) > self.max_failures:
            return max(1, math.ceil(int(ttl_ms) / 1000))
        return 0

    async def login_succeeded(self, username: str) -> None:
        await self.redis.delete(self._failures_key(username))
