"""Hot conversation state in Redis: session JSON with TTL, a fair per-conversation lock, the reply
cache that makes redelivered messages idempotent, send-once claims of outbound messages, the web
conversations' owners, and live events over pub/sub.

This is the one module that talks to Redis about conversations; the layers above see
`SessionStore`, and `StoreUnavailable` (503) where Redis did not answer, never a redis-py error.

Every key of one conversation carries the same hash tag (`{<conversation id>}`, see
`conversation_tag`), so all of them land in one Redis Cluster slot and every Lua script and
MULTI/EXEC here touches one slot only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

import redis.asyncio as aioredis

from bot.sessions import live
from bot.sessions.connection import connect, parse_cluster_url, parse_sentinel_url, retry_policy
from bot.sessions.errors import REDIS_DOWN, LockTimeout, StoreUnavailable, raises_unavailable, unavailable
from bot.types import Reply, Session

# connect & co. are re-exported: callers have always found the client's constructor here.
__all__ = ["LockTimeout", "RedisSessionStore", "SessionStore", "StoreUnavailable", "connect",
           "conversation_tag", "parse_cluster_url", "parse_sentinel_url", "retry_policy"]

SEND_ONCE_TTL_S = 24 * 3600  # far longer than a platform keeps redelivering one message
OnEvent = Callable[[dict], Awaitable[None]]


class SessionStore(Protocol):
    async def get(self, conversation_id: str) -> Session | None: ...
    async def save(self, session: Session, message_key: str | None = None,
                   replies: list[Reply] | None = None) -> None: ...
    def lock(self, conversation_id: str) -> contextlib.AbstractAsyncContextManager[None]: ...
    async def seen(self, conversation_id: str, message_key: str) -> list[Reply] | None: ...
    async def load(self, conversation_id: str,
                   message_key: str) -> tuple[list[Reply] | None, Session | None]: ...
    async def claim_owner(self, conversation_id: str, digest: str) -> bool: ...
    async def disown(self, conversation_id: str) -> None: ...
    async def owner(self, conversation_id: str) -> str | None: ...
    async def erase(self, conversation_id: str) -> int: ...
    async def claim_send_once(self, conversation_id: str, message_key: str,
                              ttl_s: int = SEND_ONCE_TTL_S) -> bool: ...
    async def release_send_once(self, conversation_id: str, message_key: str) -> None: ...
    async def claim_once(self, name: str, ttl_s: int) -> bool: ...
    async def release_once(self, name: str) -> None: ...
    async def publish(self, event: dict) -> None: ...
    def events(self, channels: Sequence[str] | None = None) -> AsyncIterator[dict]: ...
    async def follow(self, channels: Sequence[str], on_event: OnEvent) -> None: ...
    def subscribe(self) -> AsyncIterator[dict]: ...
    async def ping(self) -> bool: ...


# Pop the head ticket if it is ours (release) or if its holder's lease has expired (stale).
# _REAP reads the lease key `ARGV[2] .. head`, which it cannot declare in KEYS; it has the
# conversation's hash tag, so it is in KEYS[1]'s slot and Redis Cluster serves it.
_RELEASE = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('LPOP', KEYS[1]) end
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""
# Take a ticket: refresh our lease, queue the token, keep the queue alive, and say who is first.
# One round trip where four were (a turn that finds its conversation free waits for nothing else).
_ENQUEUE = """
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
return redis.call('LINDEX', KEYS[1], 0)
"""
_REAP = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and head ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. head) == 0 then
  redis.call('LPOP', KEYS[1])
  return 1
end
return 0
"""


def conversation_tag(conversation_id: str) -> str:
    """The hash tag every key of one conversation carries: `{<conversation id>}`, so a Redis Cluster
    keeps all of them in one slot. An id that would make an empty tag (empty, or starting with `}`)
    gets a prefix, since Redis would then hash each whole key and scatter the conversation."""
    if not conversation_id or conversation_id.startswith("}"):
        return "{~" + conversation_id + "}"
    return "{" + conversation_id + "}"


def _glob_escape(text: str) -> str:
    """`text` matched literally by a Redis SCAN/KEYS pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _hash_tag(key: str) -> str:
    """What Redis hashes a key by: its first `{...}` (with the braces), else nothing."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start : end + 1] if end > start + 1 else ""


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _session(raw: str | None) -> Session | None:
    return Session.model_validate_json(raw) if raw else None


def _replies(raw: str | None) -> list[Reply] | None:
    return [Reply.model_validate(r) for r in json.loads(raw)] if raw is not None else None


@raises_unavailable
class RedisSessionStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "sb", ttl_s: int = 7 * 86400,
                 reply_ttl_s: int = 86400, lease_s: float = 30.0, wait_s: float = 60.0,
                 history_limit: int = 100) -> None:
        if "{" in prefix or "}" in prefix:  # it would become the hash tag of every key
            raise ValueError(f"the key prefix {prefix!r} must not contain braces")
        self.r = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.reply_ttl_s = reply_ttl_s
        self.lease_ms = int(lease_s * 1000)
        self.wait_s = wait_s
        self.history_limit = history_limit
        self.channel = f"{prefix}:events"
        self._release = client.register_script(_RELEASE)
        self._reap = client.register_script(_REAP)
        self._enqueue = client.register_script(_ENQUEUE)

    def _key(self, conversation_id: str, part: str) -> str:
        return f"{self.prefix}:{conversation_tag(conversation_id)}:{part}"

    async def get(self, conversation_id: str) -> Session | None:
        return _session(await self.r.get(self._key(conversation_id, "session")))

    async def save(self, session: Session, message_key: str | None = None,
                   replies: list[Reply] | None = None) -> None:
        """Session and the reply to `message_key` in one transaction: both or neither."""
        session.history = session.history[-self.history_limit :]
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.set(self._key(session.conversation_id, "session"), session.model_dump_json(),
                     ex=self.ttl_s)
            pipe.expire(self._key(session.conversation_id, "owner"), self.ttl_s)  # lives as long
            if message_key is not None:
                payload = json.dumps([r.model_dump() for r in replies or []])
                pipe.set(self._key(session.conversation_id, f"reply:{message_key}"), payload,
                         ex=self.reply_ttl_s)
            await pipe.execute()

    async def seen(self, conversation_id: str, message_key: str) -> list[Reply] | None:
        """The replies already given to this message, if it was handled before."""
        return _replies(await self.r.get(self._key(conversation_id, f"reply:{message_key}")))

    async def load(self, conversation_id: str,
                   message_key: str) -> tuple[list[Reply] | None, Session | None]:
        """`seen` and `get` in one round trip (one MGET: both keys share the conversation's slot)."""
        replies, session = await self.r.mget([self._key(conversation_id, f"reply:{message_key}"),
                                              self._key(conversation_id, "session")])
        return _replies(replies), _session(session)

    async def claim_owner(self, conversation_id: str, digest: str) -> bool:
        """Bind a new conversation to its owner's token digest; False when it exists or is bound."""
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.exists(self._key(conversation_id, "session"))
            pipe.set(self._key(conversation_id, "owner"), digest, nx=True, ex=self.ttl_s)
            exists, claimed = await pipe.execute()
        if exists and claimed:  # a conversation of another channel (or from before owners): not ours
            await self.r.delete(self._key(conversation_id, "owner"))
            return False
        return bool(claimed)

    async def disown(self, conversation_id: str) -> None:
        """Undo `claim_owner` for a conversation that never got a session (its first turn failed)."""
        if not await self.r.exists(self._key(conversation_id, "session")):
            await self.r.delete(self._key(conversation_id, "owner"))

    async def owner(self, conversation_id: str) -> str | None:
        """The token digest a web conversation is bound to (None: unknown, or not a web one)."""
        return await self.r.get(self._key(conversation_id, "owner"))

    async def delete(self, conversation_id: str) -> None:
        await self.r.delete(self._key(conversation_id, "session"))

    async def erase(self, conversation_id: str) -> int:
        """The right to erasure in Redis: every key that carries the conversation's hash tag under
        our prefix (session, reply cache and send-once keys, hand-off state, typing flag), taken
        under the conversation's lock so that a turn in progress cannot save it back. The lock's
        own queue and leases are left to expire: they hold tokens, and waiters still queue on them.
        Returns how many keys were deleted."""
        pattern = f"{_glob_escape(self.prefix)}:*{_glob_escape(conversation_tag(conversation_id))}*"
        tag = _hash_tag(self._key(conversation_id, "session"))
        lock_parts = (self._key(conversation_id, "lock"), self._key(conversation_id, "lease:"))
        async with self.lock(conversation_id):
            keys = [k async for k in self.r.scan_iter(match=pattern, count=1000)
                    if _hash_tag(_s(k)) == tag and not _s(k).startswith(lock_parts)]
            deleted = 0
            for key in keys:  # one by one: under Redis Cluster the tagged keys of other parts
                deleted += int(await self.r.delete(key))  # (hand-off, typing) may sit elsewhere
        return deleted

    @contextlib.asynccontextmanager
    async def lock(self, conversation_id: str) -> AsyncIterator[None]:
        """A ticket queue: holders are served in the order they asked, across all replicas.

        Each ticket has a lease key; a ticket whose owner died (lease expired) is reaped by the next
        in line, so a crashed replica blocks a conversation for at most one lease.
        """
        queue = self._key(conversation_id, "lock")
        lease_prefix = self._key(conversation_id, "lease:")
        token = uuid.uuid4().hex
        lease = lease_prefix + token
        try:
            with unavailable():
                waited = await self._wait_turn(conversation_id, queue, lease_prefix, token)
        except BaseException:
            await self._safe_release(queue, token, lease)
            raise
        try:
            if waited:  # the lease runs from now, not from when we queued
                with unavailable():
                    await self.r.set(lease, "1", px=self.lease_ms)
            yield
        finally:
            await self._safe_release(queue, token, lease)

    async def _wait_turn(self, conversation_id: str, queue: str, lease_prefix: str, token: str) -> bool:
        """Queue `token` and wait until it is first in line; whether it had to wait."""
        lease = lease_prefix + token
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        delay = 0.002
        waited = False
        head = await self._enqueue(keys=[queue, lease], args=[token, self.lease_ms])
        while head != token:
            waited = True
            if head is None:  # queue expired under us (very long wait): queue again
                await self.r.rpush(queue, token)
            else:
                await self._reap(keys=[queue], args=[token, lease_prefix])
            if loop.time() > deadline:
                raise LockTimeout(f"conversation {conversation_id} is busy")
            await self.r.set(lease, "1", px=self.lease_ms)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.05)
            head = await self.r.lindex(queue, 0)
        return waited

    async def _safe_release(self, queue: str, token: str, lease: str) -> None:
        with contextlib.suppress(*REDIS_DOWN):
            await self._release(keys=[queue, lease], args=[token])

    # -- send-once claims -------------------------------------------------------------------------

    async def claim_send_once(self, conversation_id: str, message_key: str,
                              ttl_s: int = SEND_ONCE_TTL_S) -> bool:
        """Claim the right to send the answer to one inbound message (`<prefix>:{<id>}:sent:<key>`):
        True for the first caller within `ttl_s`, False for a redelivery (already sent, or being
        sent). A send that fails gives the claim back (`release_send_once`) so a redelivery retries."""
        return await self._claim(self._key(conversation_id, f"sent:{message_key}"), ttl_s)

    async def release_send_once(self, conversation_id: str, message_key: str) -> None:
        await self.r.delete(self._key(conversation_id, f"sent:{message_key}"))

    async def claim_once(self, name: str, ttl_s: int) -> bool:
        """The same for a claim that is not one conversation's (`<prefix>:<name>`, e.g. an
        integration's `chatwoot:sent:<account>:<message id>`): True for the first caller only."""
        return await self._claim(f"{self.prefix}:{name}", ttl_s)

    async def release_once(self, name: str) -> None:
        await self.r.delete(f"{self.prefix}:{name}")

    async def _claim(self, key: str, ttl_s: int) -> bool:
        return bool(await self.r.set(key, "1", nx=True, ex=ttl_s))

    # -- live events -------------------------------------------------------------------------------

    async def publish(self, event: dict) -> None:
        await self.r.publish(self.channel, json.dumps(event, default=str))

    def events(self, channels: Sequence[str] | None = None) -> AsyncIterator[dict]:
        """The JSON events published on `channels` (default: the finished turns, `channel`), for as
        long as the caller iterates; the subscription outlives a Redis restart or failover, and then
        yields `{"type": "resync"}` (what was published meanwhile is lost: reload the conversation).
        Close it (`contextlib.aclosing`) or cancel its task to unsubscribe."""
        return live.events(self.r, list(channels or [self.channel]))

    async def follow(self, channels: Sequence[str], on_event: OnEvent) -> None:
        """`on_event` for each event of `events(channels)`, until cancelled (a push task's body)."""
        await live.follow(self.r, list(channels), on_event)

    def subscribe(self) -> AsyncIterator[dict]:
        """The finished turns, live (`events()` on the store's own channel)."""
        return self.events()

    async def ping(self, timeout_s: float = 2.0) -> bool:
        """For readiness: answers within `timeout_s` rather than riding out the retry budget."""
        try:
            return bool(await asyncio.wait_for(self.r.ping(), timeout_s))
        except (*REDIS_DOWN, OSError, TimeoutError):
            return False
