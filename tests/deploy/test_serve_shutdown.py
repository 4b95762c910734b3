"""`supportbot serve` as containers run it: binds the address it is given (0.0.0.0 in the image)
and, on SIGTERM, lets in-flight requests finish within --graceful-timeout, runs the app's
shutdown, then exits.

The real CLI runs in a subprocess; only model loading is swapped for a tiny app with a slow route,
so the test takes seconds and needs no trained model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import ROOT

pytestmark = pytest.mark.deploy

SERVE = textwrap.dedent("""
    import asyncio, sys
    import bot.assets, bot.web.app
    from fastapi import FastAPI

    def create_app(settings):
        app = FastAPI()

        @app.get("/healthz")
        async def healthz():
            return {"status": "ok"}

        @app.get("/slow")
        async def slow(seconds: float):
            await asyncio.sleep(seconds)
            return {"slept": seconds}

        return app

    bot.assets.ensure_assets = lambda settings, console=None: None
    bot.web.app.create_app = create_app
    from bot.cli import app
    app(["serve", *sys.argv[1:]])
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, str, Path]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
        env["SUPPORTBOT_DATA_DIR"] = str(tmp_path)
        log = tmp_path / f"serve-{port}.log"
        proc = subprocess.Popen([sys.executable, "-c", SERVE, "--port", str(port), *args], env=env,
                                cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # generous: imports alone are slow on a busy 2-core machine
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return proc, url, log
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start:\n" + log.read_text()[-2000:]
            time.sleep(0.1)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _in_flight(url: str, seconds: float) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def call() -> None:
        try:
            result["response"] = httpx.get(f"{url}/slow", params={"seconds": seconds}, timeout=30)
        except httpx.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.4)  # the request is being handled
    return thread, result


def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(serve) -> None:  # type: ignore[no-untyped-def]
    proc, url, log = serve("--host", "0.0.0.0", "--graceful-timeout", "10")
    thread, result = _in_flight(url, 1.5)
    proc.send_signal(signal.SIGTERM)
    thread.join(timeout=20)
    assert "error" not in result, result
    assert result["response"].status_code == 200 and result["response"].json() == {"slept": 1.5}
    # uvicorn re-raises the signal once it has shut down, so the exit status says "terminated".
    assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    output = log.read_text()
    assert "http://0.0.0.0:" in output, output[-2000:]
    assert "Application shutdown complete" in output, output[-2000:]


def test_graceful_timeout_bounds_the_wait(serve) -> None:  # type: ignore[no-untyped-def]
    proc, url, _ = serve("--host", "127.0.0.1", "--graceful-timeout", "0.5")
    thread, _ = _in_flight(url, 30)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    assert time.monotonic() - started < 10, "a stuck request must not hold the pod past its grace period"
    thread.join(timeout=30)
