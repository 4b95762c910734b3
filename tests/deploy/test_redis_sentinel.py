"""The chart's bundled-Redis script against real redis-server and Sentinel processes on loopback,
and the app's `redis+sentinel://` connection through them."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.sessions.store import RedisSessionStore, connect, parse_sentinel_url
from tests.deploy.conftest import CHART
from tests.redis_servers import BIN, free_port, wait_ping

pytestmark = pytest.mark.deploy

SCRIPT = CHART / "files" / "redis-config.sh"
PRESTOP = CHART / "files" / "redis-prestop.sh"

if BIN is None:
    pytest.skip("no redis-server binary", allow_module_level=True)


def run_script(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {"PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", **env}
    return subprocess.run(["sh", str(script)], env=full, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One 'pod' of the StatefulSet: the init script's configs, then redis and sentinel started from
    them exactly as the containers do."""
    tmp_path = tmp_path_factory.mktemp("redis-pod")
    env = {"ME": "127.0.0.1", "PEERS": "127.0.0.1", "REDIS_PASSWORD": secrets.token_hex(16),
           "MASTER_NAME": "supportbot", "QUORUM": "1", "REDIS_PORT": str(free_port()),
           "SENTINEL_PORT": str(free_port()), "CONF_DIR": str(tmp_path / "conf"),
           "DATA_DIR": str(tmp_path / "data"), "DOWN_AFTER_MS": "1000"}
    done = run_script(SCRIPT, env)
    assert done.returncode == 0, done.stderr
    conf = Path(env["CONF_DIR"])
    procs = [subprocess.Popen([str(BIN / "redis-server"), str(conf / "redis.conf")], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)]
    try:
        wait_ping(int(env["REDIS_PORT"]), env["REDIS_PASSWORD"])
        procs.append(subprocess.Popen(
            [str(BIN / "redis-server"), str(conf / "sentinel.conf"), "--sentinel"], cwd=tmp_path,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        wait_ping(int(env["SENTINEL_PORT"]), env["REDIS_PASSWORD"])
        yield env
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_first_pod_is_master_with_aof_and_auth(pod: dict[str, str]) -> None:
    conf = (Path(pod["CONF_DIR"]) / "redis.conf").read_text()
    assert "appendonly yes" in conf and "replicaof" not in conf
    client = redis.Redis(port=int(pod["REDIS_PORT"]), password=pod["REDIS_PASSWORD"])
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.role()[0] == b"master"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=int(pod["REDIS_PORT"]), retry=Retry(NoBackoff(), 0)).set("k", "v")
    sentinel = redis.Redis(port=int(pod["SENTINEL_PORT"]), password=pod["REDIS_PASSWORD"])
    assert sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "supportbot") == [
        b"127.0.0.1", pod["REDIS_PORT"].encode()]


def test_a_restarted_pod_follows_the_master_the_sentinels_know(pod: dict[str, str],
                                                               tmp_path: Path) -> None:
    other = {**pod, "ME": "127.0.0.2", "PEERS": "127.0.0.2 127.0.0.1",
             "CONF_DIR": str(tmp_path / "other")}
    done = run_script(SCRIPT, other)
    assert done.returncode == 0, done.stderr
    conf = (tmp_path / "other" / "redis.conf").read_text()
    assert f"replicaof 127.0.0.1 {pod['REDIS_PORT']}" in conf, done.stdout
    sentinel_conf = (tmp_path / "other" / "sentinel.conf").read_text()
    assert f"sentinel monitor supportbot 127.0.0.1 {pod['REDIS_PORT']} 1" in sentinel_conf


async def test_app_connects_through_sentinel(pod: dict[str, str]) -> None:
    password = pod["REDIS_PASSWORD"]
    url = (f"redis+sentinel://:{password}@127.0.0.1:{pod['SENTINEL_PORT']}/supportbot/0"
           f"?sentinel_password={password}")
    client = connect(url)
    try:
        store = RedisSessionStore(client, prefix="sbdeploy", ttl_s=60)
        assert await store.ping()
        await client.set("sbdeploy:k", "v", ex=60)
        assert await client.get("sbdeploy:k") == "v"
    finally:
        await client.aclose()


def test_prestop_returns_when_no_replica_can_take_over(pod: dict[str, str]) -> None:
    started = time.monotonic()
    done = run_script(PRESTOP, pod)
    assert done.returncode == 0
    assert time.monotonic() - started < 10


def test_sentinel_url_parsing() -> None:
    sentinels, master, options = parse_sentinel_url(
        "redis+sentinel://user:p%40ss@a:26380,b,[::1]:5000/mymaster/2?sentinel_password=s%2Fx")
    assert sentinels == [("a", 26380), ("b", 26379), ("::1", 5000)]
    assert master == "mymaster"
    assert options == {"db": 2, "username": "user", "password": "p@ss", "sentinel_password": "s/x"}
    assert parse_sentinel_url("redis+sentinel://s1/mm") == ([("s1", 26379)], "mm", {"db": 0})
    for bad in ("redis+sentinel://s1", "redis+sentinel:///mm", "redis+sentinel://s1/mm/0/x"):
        with pytest.raises(ValueError):
            parse_sentinel_url(bad)
