"""Hot conversation state in Redis: session JSON with TTL, a fair per-conversation lock, the reply
cache that makes redelivered messages idempotent, and pub/sub of finished turns.

Every key of one conversation carries the same hash tag (`{<conversation id>}`, see
`conversation_tag`), so all of them land in one Redis Cluster slot and every Lua script and
MULTI/EXEC here touches one slot only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.types import Reply, Session


class LockTimeout(RuntimeError):
    """The conversation stayed busy longer than the configured wait."""


class SessionStore(Protocol):
    async def get(self, conversation_id: str) -> Session | None: ...
    async def save(self, session: Session, message_key: str | None = None,
                   replies: list[Reply] | None = None) -> None: ...
    def lock(self, conversation_id: str) -> contextlib.AbstractAsyncContextManager[None]: ...
    async def seen(self, conversation_id: str, message_key: str) -> list[Reply] | None: ...
    async def load(self, conversation_id: str,
                   message_key: str) -> tuple[list[Reply] | None, Session | None]: ...
    async def publish(self, event: dict) -> None: ...
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


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def conversation_tag(conversation_id: str) -> str:
    """The hash tag every key of one conversation carries: `{<conversation id>}`, so a Redis Cluster
    keeps all of them in one slot. An id that would make an empty tag (empty, or starting with `}`)
    gets a prefix, since Redis would then hash each whole key and scatter the conversation."""
    if not conversation_id or conversation_id.startswith("}"):
        return "{~" + conversation_id + "}"
    return "{" + conversation_id + "}"


def retry_policy(budget_s: float) -> Retry:
    """Exponential backoff (0.1 s, 0.2 s, ... capped at 1 s) for about `budget_s` seconds in all:
    long enough to ride over a restart or a Sentinel/Cluster failover, then the error surfaces
    (a turn answers 503 and the client resends with the same message id)."""
    backoff = ExponentialBackoff(cap=1.0, base=0.05)
    retries, total = 0, 0.0
    while total < budget_s:
        retries += 1
        total += backoff.compute(retries)
    return Retry(backoff, retries)


def connect(url: str, retry_s: float = 10.0) -> aioredis.Redis:
    """A client that rides over short outages (a restart, a failover) with backed-off retries for
    about `retry_s` seconds.

    `redis://`, `rediss://` and `unix://` URLs connect directly; a `redis+sentinel://` URL asks
    Redis Sentinel for the current master and follows a failover (see `parse_sentinel_url`); a
    `redis+cluster://` (TLS: `rediss+cluster://`) URL talks to a Redis Cluster (see
    `parse_cluster_url`) and returns a `RedisCluster`, which has the same command methods."""
    options: dict = dict(
        decode_responses=True,
        retry=retry_policy(retry_s),
        # A master demoted to replica under a plain URL answers READONLY: reconnect and retry
        # (through Sentinel, redis-py turns that into a ConnectionError and asks again).
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError, ReadOnlyError],
        health_check_interval=15,
        socket_connect_timeout=2,
    )
    if url.startswith("redis+sentinel://"):
        return _sentinel_master(url, options)
    if url.startswith(CLUSTER_SCHEMES):
        # The cluster client handles MOVED/ASK and retries a lost connection itself, re-reading the
        # slot map each time; redis-py 8 does that without backoff, so `retry_s` is an attempt
        # count here, not a time budget, and a cluster failover may outlast it (the turn is 503).
        nodes, auth = parse_cluster_url(url)
        del options["retry_on_error"]
        return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in nodes],
                            **auth, **options)  # type: ignore[return-value]
    return aioredis.Redis.from_url(url, **options)


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, object]]:
    """`redis+cluster://[[user]:password@]host[:6379][,host2[:port]...][/0][?option=value...]`
    -> (startup nodes, client options). `rediss+cluster://` connects with TLS. Any node of the
    cluster will do (the client reads the slot map from it); list several in case one is down.
    Query options are redis-py's URL options (`ssl_cert_reqs`, `ssl_ca_certs`, ...)."""
    from urllib.parse import urlsplit, urlunsplit

    from redis.asyncio.connection import SSLConnection, parse_url

    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    nodes = _host_list(hostlist, 6379)
    if not nodes:
        raise ValueError("expected redis+cluster://[:password@]host:port[,host:port...]")
    # Credentials, TLS and query options as redis-py reads any URL (one placeholder host in it).
    scheme = "rediss" if parts.scheme == "rediss+cluster" else "redis"
    netloc = (userinfo + "@" if userinfo else "") + "cluster"
    options = parse_url(urlunsplit((scheme, netloc, parts.path, parts.query, "")))
    for key in ("host", "port"):
        options.pop(key, None)
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    if options.pop("db", 0):
        raise ValueError("a Redis Cluster has only database 0")
    return nodes, options


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, dict[str, object]]:
    """`redis+sentinel://[[user]:password@]host[:26379][,host2[:port]...]/<master name>[/<db>]
    [?sentinel_password=...]` -> (sentinels, master name, master connection options).

    The user and password authenticate to the master; `sentinel_password` to the sentinels
    (omit it where they have no `requirepass`). Percent-escapes are decoded."""
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    sentinels = _host_list(hostlist, 26379)
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


def _host_list(hostlist: str, default_port: int) -> list[tuple[str, int]]:
    """`host[:port][,host[:port]...]`, IPv6 addresses in brackets."""
    hosts = []
    for item in filter(None, hostlist.split(",")):
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, _, port = item.partition(":")
        hosts.append((host, int(port or default_port)))
    return hosts


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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        delay = 0.002
        waited = False
        try:
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
        except BaseException:
            await self._safe_release(queue, token, lease)
            raise
        try:
            if waited:  # the lease runs from now, not from when we queued
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

    async def ping(self, timeout_s: float = 2.0) -> bool:
        """For readiness: answers within `timeout_s` rather than riding out the retry budget."""
        try:
            return bool(await asyncio.wait_for(self.r.ping(), timeout_s))
        except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError):
            return False
