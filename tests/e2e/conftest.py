"""`supportbot serve` as a real process (embedded Redis, SQLite) on a free port, once per run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, copy_assets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_server_env(data_dir: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of a `supportbot serve` on the demo data in `data_dir`: none of this
    machine's SUPPORTBOT_* variables, the repository's data, `port`, then `settings` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
    env.update({
        "SUPPORTBOT_DATA_DIR": str(data_dir),
        "SUPPORTBOT_TRAINING_DATA": str(ROOT / "training_data"),
        "SUPPORTBOT_KNOWLEDGE_BASE": str(ROOT / "knowledge_base"),
        "SUPPORTBOT_DOMAIN_FILE": str(ROOT / "training_data" / "domain.yml"),
        "SUPPORTBOT_PORT": str(port),
        **settings,
    })
    return env


@contextlib.contextmanager
def serve_demo(data_dir: Path, **settings: str) -> Iterator[str]:
    """`supportbot serve` on the demo data, its model and index already in `data_dir`, with
    `SUPPORTBOT_*` `settings` on top; yields its URL once /readyz answers 200, stops it after."""
    port = free_port()
    env = demo_server_env(data_dir, port, **settings)
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], env=env, cwd=data_dir,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError((data_dir / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                log_tail = (data_dir / "server.log").read_text()[-3000:]
                raise RuntimeError("server did not become ready:\n" + log_tail)
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def server(demo_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("served")
    copy_assets(demo_assets, data_dir)
    # Generated answers are tested with a server of their own (tests/browser/test_generation_widget.py).
    # Agents always on duty, so that hand-offs do not depend on the hour the suite runs at.
    with serve_demo(data_dir, SUPPORTBOT_GENERATION__BACKEND="none",
                    SUPPORTBOT_BUSINESS_HOURS="Mon-Sun 00:00-24:00") as url:
        os.environ["SB_SERVED_DATA_DIR"] = str(data_dir)  # for tests that run the CLI against it
        yield url
    assert not (data_dir / "redis" / "redis.sock").exists(), "embedded Redis left running"


@contextlib.contextmanager
def serve_rasa_project(project: Path, data_dir: Path, **settings: str) -> Iterator[str]:
    """`supportbot serve` for the Rasa 3 project folder `project` (SUPPORTBOT_RASA__PROJECT; the
    project's domain, data/ and knowledge_base/ replace the demo's), its trained model already in
    `data_dir`, with `SUPPORTBOT_*` `settings` on top; yields its URL once /readyz answers 200."""
    with serve_demo(data_dir, SUPPORTBOT_RASA__PROJECT=str(project), **settings) as url:
        yield url
