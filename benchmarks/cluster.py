"""A throw-away supportbot deployment on loopback for benchmarks/load.py: a dedicated redis-server
with an append-only file, a temporary PostgreSQL database (SQLite where PostgreSQL is unreachable)
and N `supportbot serve` replicas, each its own process group. Everything lives under one temp
dir; `LocalCluster.close()` stops every process it started and removes the dir and the database,
and is safe to call twice or after a half-finished start."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REPO = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_ADMIN = os.environ.get("SUPPORTBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stop_group(proc: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group we started (start_new_session), SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class Replica:
    name: str
    port: int
    log: Path
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class LocalCluster:
    data_dir: Path
    replicas: int = 2
    database: str = "auto"  # auto | postgres | sqlite
    torch_threads: int = 1
    graceful_timeout: float = 2.0
    extra_env: dict[str, str] = field(default_factory=dict)
    keep: bool = False

    def __post_init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="sb-load-"))
        self.redis_port = free_port()
        self.redis_dir = self.tmp / "redis"
        self.redis_proc: subprocess.Popen | None = None
        self.db_name: str | None = None
        self.database_url = ""
        self.database_note = ""
        self.nodes = [Replica(f"replica-{i + 1}", free_port(), self.tmp / f"replica-{i + 1}.log")
                      for i in range(self.replicas)]
        self._logs: list = []
        self._secret = secrets.token_hex(32)  # one console-cookie key for every replica

    # ---- Redis -------------------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self, timeout: float = 30.0) -> float:
        """Start (or restart, on the same port and dir, so the AOF is reloaded); seconds to PONG."""
        self.redis_dir.mkdir(exist_ok=True)
        t = time.monotonic()
        log = (self.tmp / "redis.log").open("ab")
        self._logs.append(log)
        self.redis_proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--dir", str(self.redis_dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
             "--protected-mode", "yes", "--logfile", ""],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis(port=self.redis_port, socket_timeout=1)
        try:
            while True:
                if self.redis_proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.tail(self.tmp / 'redis.log')}")
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return time.monotonic() - t
                if time.monotonic() - t > timeout:
                    raise RuntimeError("redis-server did not answer PING")
                time.sleep(0.02)
        finally:
            client.close()

    def restart_redis(self) -> dict[str, float]:
        """SHUTDOWN (which fsyncs the AOF), wait for the exit, start again on the same port and dir."""
        t = time.monotonic()
        # No client-side retries: redis-py's default would reconnect to the stopping server with
        # backoff for seconds and make the outage look longer than it is.
        client = redis.Redis(port=self.redis_port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
        keys = client.dbsize()
        with contextlib.suppress(redis.ConnectionError):
            client.shutdown()
        client.close()
        assert self.redis_proc is not None
        self.redis_proc.wait(timeout=30)
        stopped = time.monotonic() - t
        self.start_redis()
        client = redis.Redis(port=self.redis_port, socket_timeout=5)
        reloaded = client.dbsize()
        client.close()
        return {"down_s": round(time.monotonic() - t, 3), "shutdown_s": round(stopped, 3),
                "keys_before": keys, "keys_after_reload": reloaded}

    # ---- database ----------------------------------------------------------------------------
    def create_database(self) -> None:
        if self.database in ("auto", "postgres"):
            try:
                from sqlalchemy import create_engine, text

                admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT",
                                      connect_args={"connect_timeout": 3})
                name = f"sb_load_{uuid.uuid4().hex[:10]}"
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                admin.dispose()
                self.db_name = name
                self.database_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
                self.database_note = f"PostgreSQL, temporary database {name} (dropped afterwards)"
                return
            except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL here
                if self.database == "postgres":
                    raise
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        else:
            reason = "--database sqlite"
        self.database_url = f"sqlite:///{self.tmp / 'supportbot.db'}"
        self.database_note = (f"SQLite in the temp dir, NOT PostgreSQL ({reason}); two replicas "
                              "writing one SQLite file serialise their transcript writes")

    def drop_database(self) -> None:
        if not self.db_name:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with contextlib.suppress(Exception), admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        admin.dispose()
        self.db_name = None

    # ---- replicas ----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
        env.update({
            "SUPPORTBOT_DATA_DIR": str(self.data_dir),
            "SUPPORTBOT_TRAINING_DATA": str(REPO / "training_data"),
            "SUPPORTBOT_KNOWLEDGE_BASE": str(REPO / "knowledge_base"),
            "SUPPORTBOT_DOMAIN_FILE": str(REPO / "training_data" / "domain.yml"),
            "SUPPORTBOT_REDIS_URL": self.redis_url,
            "SUPPORTBOT_DATABASE_URL": self.database_url,
            "SUPPORTBOT_SECRET_KEY": self._secret,
            "SUPPORTBOT_TORCH_THREADS": str(self.torch_threads),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            **self.extra_env,
        })
        return env

    def ensure_assets(self, timeout: float = 1800) -> None:
        """Train / index once, before any replica starts, so they share one data dir; and migrate
        the new database once: replicas that start together on an empty PostgreSQL database race
        on Alembic's first CREATE TABLE and one of them exits."""
        code = ("from bot.cli import _settings; from bot.assets import ensure_assets; "
                "from bot.storage.db import make_engine, migrate; s = _settings(); ensure_assets(s); "
                "migrate(make_engine(s.resolved_database_url))")
        subprocess.run([sys.executable, "-c", code], env=self.env(), cwd=REPO, check=True, timeout=timeout)

    def start_replica(self, node: Replica) -> None:
        log = node.log.open("ab")
        self._logs.append(log)
        node.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(node.port),
             "--graceful-timeout", str(self.graceful_timeout)],
            env=self.env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        node.starts += 1

    def wait_ready(self, node: Replica, timeout: float = 300) -> float:
        t = time.monotonic()
        while True:
            if node.proc is None or node.proc.poll() is not None:
                raise RuntimeError(f"{node.name} exited:\n{self.tail(node.log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{node.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - t
            if time.monotonic() - t > timeout:
                raise RuntimeError(f"{node.name} not ready after {timeout:.0f} s:\n{self.tail(node.log)}")
            time.sleep(0.2)

    def kill_replica(self, node: Replica) -> None:
        """kill -9 the whole process group: no graceful shutdown, sockets reset, locks left held."""
        assert node.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait(timeout=10)

    def start(self) -> None:
        self.start_redis()
        self.create_database()
        self.ensure_assets()
        for node in self.nodes:
            self.start_replica(node)
        for node in self.nodes:
            self.wait_ready(node)

    def pids(self) -> dict[str, int]:
        out = {n.name: n.proc.pid for n in self.nodes if n.proc is not None and n.proc.poll() is None}
        if self.redis_proc is not None and self.redis_proc.poll() is None:
            out["redis"] = self.redis_proc.pid
        return out

    @staticmethod
    def tail(path: Path, chars: int = 3000) -> str:
        try:
            return path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                stop_group(node.proc, timeout=self.graceful_timeout + 10)
        with contextlib.suppress(Exception):
            stop_group(self.redis_proc)
        with contextlib.suppress(Exception):
            self.drop_database()
        for log in self._logs:
            with contextlib.suppress(Exception):
                log.close()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
