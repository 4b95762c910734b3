from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import server  # noqa: F401  (the same served app)

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "console-test-password"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if Path(CHROMIUM).exists() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not installed (make test installs it)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ARGS}


@pytest.fixture(scope="session")
def agent_account(server: str) -> str:  # noqa: F811  (the fixture above)
    """An admin created once with the real CLI against the served app's data folder (a second
    `create-agent maria` would fail: the name is taken)."""
    data_dir = Path(os.environ.get("SB_SERVED_DATA_DIR", ""))
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir), "SUPPORTBOT_AGENT_PASSWORD": PASSWORD}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "create-agent", "maria", "--name", "Maria Lopez",
                           "--role", "admin"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return "maria"
