"""A real rasa-sdk action server for a Rasa project's custom actions, run from `.venv-actions` (built by
`make actions`): the project's own Python environment, as in production, never supportbot's venv."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]
ACTIONS_PYTHON = ROOT / ".venv-actions" / "bin" / "python"
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0


@contextlib.contextmanager
def running_action_server(project_dir: Path, port: int | None = None) -> Iterator[str]:
    """Start `python -m rasa_sdk --actions actions` in `project_dir` on loopback, yield its webhook URL
    once `/health` answers, and stop it (SIGTERM, then SIGKILL after a grace period) afterwards."""
    from tests.e2e.conftest import free_port

    if not ACTIONS_PYTHON.exists():
        raise RuntimeError(f"{ACTIONS_PYTHON} is missing: run `make actions` to build the action "
                           "server's venv (rasa-sdk 3.21.1)")
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update({"SANIC_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [str(ACTIONS_PYTHON), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
            cwd=project_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        root = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(proc, root, log)
            yield f"{root}/webhook"
        finally:
            _stop(proc)


def _wait_healthy(proc: subprocess.Popen[bytes], root: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the action server exited with {proc.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{root}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the action server did not answer {root}/health within {START_TIMEOUT_S:g} s:\n"
                       f"{_tail(log)}")


def _tail(log: IO[bytes], chars: int = 4000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-chars:]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (Sanic may run workers beside its main process) while its
    leader is not yet reaped, so the group id is still this server's."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
