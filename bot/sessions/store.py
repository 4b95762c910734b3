"""Hot conversation state in Redis: session JSON with TTL, a fair per-conversation lock, the reply
cache that makes redelivered messages idempotent, and pub/sub of finished turns.

Every key of one conversation carries the same hash tag (`{conversation}`), so all of them land in
one Redis Cluster slot and the Lua scripts stay single-slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from bot.types import Reply, Session


class LockTimeout(RuntimeError):
    """The conversation stayed busy longer than the configured wait."""


class SessionStore(Protocol):
    async def get(self, conversation_id: str) -> Session | None: ...
    async def save(self, session: Session, message_key: str | None = None,
                   replies: list[Reply] | None = None) -> None: ...
    def lock(self, conversation_id: str) -> contextlib.AbstractAsyncContextManager[None]: ...
    async def seen(self, conversation_id: str, message_key: str) -> list[Reply] | None: ...
    async def publish(self, event: dict) -> None: ...
    def subscribe(self) -> AsyncIterator[dict]: ...
    async def ping(self) -> bool: ...


# Pop the head ticket if it is ours (release) or if its holder's lease has expired (stale).
_RELEASE = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('LPOP', KEYS[1]) end
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""
_REAP = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and head ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. head) == 0 then
  redis.call('LPOP', KEYS[1])
  return 1
end
return 0
"""


def connect(url: str) -> aioredis.Redis:
    """A client that rides over short outages (a restart, a failover) with backed-off retries.

    `redis://`, `rediss://` and `unix://` URLs connect directly; a `redis+sentinel://` URL asks
    Redis Sentinel for the current master and follows a failover (see `parse_sentinel_url`)."""
    options: dict = dict(
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=6),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        health_check_interval=15,
        socket_connect_timeout=2,
    )
    if url.startswith("redis+sentinel://"):
        return _sentinel_master(url, options)
    return aioredis.Redis.from_url(url, **options)


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, dict[str, object]]:
    """`redis+sentinel://[[user]:password@]host[:26379][,host2[:port]...]/<master name>[/<db>]
    [?sentinel_password=...]` -> (sentinels, master name, master connection options).

    The user and password authenticate to the master; `sentinel_password` to the sentinels
    (omit it where they have no `requirepass`). Percent-escapes are decoded."""
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    sentinels = []
    for item in filter(None, hostlist.split(",")):
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, _, port = item.partition(":")
        sentinels.append((host, int(port or 26379)))
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not sentinels or not path or len(path) > 2:
        raise ValueError("expected redis+sentinel://[:password@]host:port[,host:port]/<master>[/<db>]")
    options: dict[str, object] = {"db": int(path[1]) if len(path) > 1 else 0}
    if userinfo:
        user, _, password = userinfo.partition(":")
        options.update({k: unquote(v) for k, v in (("username", user), ("password", password)) if v})
    query = parse_qs(parts.query)
    if query.get("sentinel_password"):
        options["sentinel_password"] = query["sentinel_password"][0]
    return sentinels, path[0], options


class _SentinelBackedRedis(aioredis.Redis):
    """The master's client; closing it also closes the connections to the sentinels."""

    sentinel: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel is not None:
            for client in self.sentinel.sentinels:
                await client.aclose()


def _sentinel_master(url: str, options: dict) -> aioredis.Redis:
    sentinels, master, auth = parse_sentinel_url(url)
    sentinel_password = auth.pop("sentinel_password", None)
    sentinel = Sentinel(sentinels, sentinel_kwargs={
        "password": sentinel_password, "socket_connect_timeout": 2, "socket_timeout": 2,
        "decode_responses": True})
    client = sentinel.master_for(master, redis_class=_SentinelBackedRedis, **auth, **options)
    client.sentinel = sentinel
    return client


class RedisSessionStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "sb", ttl_s: int = 7 * 86400,
                 reply_ttl_s: int = 86400, lease_s: float = 30.0, wait_s: float = 60.0,
                 history_limit: int = 100) -> None:
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

    def _key(self, conversation_id: str, part: str) -> str:
        return f"{self.prefix}:{{{conversation_id}}}:{part}"

    async def get(self, conversation_id: str) -> Session | None:
        raw = await self.r.get(self._key(conversation_id, "session"))
        return Session.model_validate_json(raw) if raw else None

    async def save(self, session: Session, message_key: str | None = None,
                   replies: list[Reply] | None = None) -> None:
        """Session and the reply to `message_key` in one transaction: both or neither."""
        session.history = session.history[-self.history_limit :]
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.set(self._key(session.conversation_id, "session"), session.model_dump_json(),
                     ex=self.ttl_s)
            if message_key is not None:
                payload = json.dumps([r.model_dump() for r in replies or []])
                pipe.set(self._key(session.conversation_id, f"reply:{message_key}"), payload,
                         ex=self.reply_ttl_s)
            await pipe.execute()

    async def seen(self, conversation_id: str, message_key: str) -> list[Reply] | None:
        """The replies already given to this message, if it was handled before."""
        raw = await self.r.get(self._key(conversation_id, f"reply:{message_key}"))
        if raw is None:
            return None
        return [Reply.model_validate(r) for r in json.loads(raw)]

    async def delete(self, conversation_id: str) -> None:
        await self.r.delete(self._key(conversation_id, "session"))

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
        await self.r.set(lease, "1", px=self.lease_ms)
        await self.r.rpush(queue, token)
        await self.r.pexpire(queue, self.lease_ms * 4)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        delay = 0.002
        try:
            while True:
                head = await self.r.lindex(queue, 0)
                if head == token:
                    break
                if head is None:  # queue expired under us (very long wait): queue again
                    await self.r.rpush(queue, token)
                else:
                    await self._reap(keys=[queue], args=[token, lease_prefix])
                if loop.time() > deadline:
                    raise LockTimeout(f"conversation {conversation_id} is busy")
                await self.r.set(lease, "1", px=self.lease_ms)
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.05)
        except BaseException:
            await self._safe_release(queue, token, lease)
            raise
        try:
            await self.r.set(lease, "1", px=self.lease_ms)
            yield
        finally:
            await self._safe_release(queue, token, lease)

    async def _safe_release(self, queue: str, token: str, lease: str) -> None:
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
            await self._release(keys=[queue, lease], args=[token])

    async def publish(self, event: dict) -> None:
        await self.r.publish(self.channel, json.dumps(event, default=str))

    async def subscribe(self) -> AsyncIterator[dict]:
        pubsub = self.r.pubsub()
        await pubsub.subscribe(self.channel)
        try:
            async for msg in pubsub.listen():
                if msg.get("type") == "message":
                    yield json.loads(msg["data"])
        finally:
            await pubsub.unsubscribe(self.channel)
            await pubsub.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self.r.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False
