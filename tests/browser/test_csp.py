"""Our pages under their Content-Security-Policy in real Chromium: nothing is refused (no inline
script or style left behind), and the widget's stylesheet is applied."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_widget import open_widget

pytestmark = pytest.mark.browser
PASSWORD = "csp-test-password"


def watch_violations(page: Page) -> list[str]:
    """CSP refusals, from the console and from securitypolicyviolation events."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script("""document.addEventListener("securitypolicyviolation", function (e) {
        console.error("Content Security Policy violation: " + e.violatedDirective + " " + e.blockedURI);
    });""")
    return seen


def test_demo_page_and_widget_under_the_csp(server: str, page: Page) -> None:
    violations = watch_violations(page)
    open_widget(page, server)
    launcher = page.locator("[data-sb=launcher]")
    assert launcher.evaluate("e => getComputedStyle(e).position") == "fixed"  # the widget's CSS applies
    assert page.evaluate("() => getComputedStyle(document.body).fontFamily").startswith("Georgia")
    expect(page.locator("#supportbot-widget[data-live='1']")).to_be_attached(timeout=15_000)  # ws: allowed
    assert violations == []


def test_console_pages_under_the_csp(server: str, page: Page) -> None:
    data_dir = Path(os.environ.get("SB_SERVED_DATA_DIR", ""))
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir), "SUPPORTBOT_AGENT_PASSWORD": PASSWORD}
    subprocess.run([sys.executable, "-m", "bot.cli", "create-agent", "csp.admin", "--name", "CSP Admin",
                    "--role", "admin"], env=env, check=True, capture_output=True)
    violations = watch_violations(page)
    page.goto(f"{server}/console/login")
    page.fill("#username", "csp.admin")
    page.fill("#password", PASSWORD)
    page.click("#submit")  # login.js (no longer inline) does the log-in
    expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
    page.goto(f"{server}/console/admin")
    expect(page.locator("#agents tr")).not_to_have_count(0, timeout=15_000)  # admin.js listed the agents
    grid = page.locator(".admin-grid")
    assert grid.evaluate("e => getComputedStyle(e).display") == "grid"
    assert violations == []
