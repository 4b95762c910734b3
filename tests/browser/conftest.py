from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

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


def npm_file(factory: pytest.TempPathFactory, package: str, member: str) -> Path:
    """One file of an npm package (`name@version`), fetched with `npm pack` into a temporary folder
    at test time: third-party browser code is never committed."""
    npm = shutil.which("npm")
    name = package.rsplit("@", 1)[0]
    if npm is None:
        if os.environ.get("CI"):
            pytest.fail(f"npm is needed to fetch {name} for this test")
        pytest.skip("npm not installed")
    folder = factory.mktemp(name)
    subprocess.run([npm, "pack", package, "--silent"], cwd=folder, check=True, capture_output=True,
                   timeout=180)
    with tarfile.open(next(folder.glob(f"{name}-*.tgz"))) as tar:
        tar.extract(f"package/{member}", folder, filter="data")
    return folder / "package" / member


@pytest.fixture(scope="session")
def webchat_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rasa-webchat 1.0.1, the Rasa widget supportbot must serve unchanged."""
    return npm_file(tmp_path_factory, "rasa-webchat@1.0.1", "lib/index.js")


@pytest.fixture(scope="session")
def axe_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """axe-core 4, the accessibility checker every page is run through."""
    return npm_file(tmp_path_factory, "axe-core@4", "axe.min.js")


def axe_violations(page: Any, axe_js: Path, include: str | None = None) -> list[dict[str, Any]]:
    """axe-core's violations on the page (or inside the `include` selector): id, impact, nodes. The
    script is evaluated, not added as a <script>, so the page's CSP stays as it is."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_js.read_text(encoding="utf-8"))
    context = f"{{include: [[{include!r}]]}}" if include else "document"
    result = page.evaluate(f"() => axe.run({context}, {{resultTypes: ['violations']}})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result["violations"]]


def by_impact(violations: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for v in violations:
        found.setdefault(v["impact"] or "unknown", []).append(v["id"])
    return found
