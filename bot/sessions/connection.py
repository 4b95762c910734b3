"""Connecting to Redis: a plain URL, Sentinel or Cluster, with a client that rides over short
outages (a restart, a failover) with backed-off retries.

Only bot/sessions uses these (the services build one client and hand it to the stores).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


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
                            **auth, **options)
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
