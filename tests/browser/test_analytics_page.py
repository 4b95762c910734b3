"""The analytics page in real Chromium: an admin logs in, sees the charts and the definition of
"resolved", changes a filter, downloads the CSV; axe-core finds no serious or critical violation.
A screenshot goes to tmp_path (with UPDATE_SCREENSHOTS=1 to docs/analytics.png)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.storage.db import make_engine
from tests.browser.conftest import PASSWORD, axe_violations, by_impact
from tests.integration.test_analytics import seed

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def seeded(server: str) -> str:
    """The known data set of tests/integration/test_analytics.py in the served app's database."""
    engine = make_engine(f"sqlite:///{Path(os.environ['SB_SERVED_DATA_DIR']).resolve() / 'supportbot.db'}")
    try:
        seed(engine, prefix=f"an-{uuid.uuid4().hex[:6]}-")
    finally:
        engine.dispose()
    return server


def test_an_admin_reads_the_analytics(seeded: str, browser: Browser, agent_account: str, axe_js: Path,
                                      tmp_path: Path) -> None:
    server = seeded
    ctx = browser.new_context(bypass_csp=True, accept_downloads=True,  # (bypass: only to inject axe)
                              viewport={"width": 1280, "height": 1500})
    page: Page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server}/console/analytics")
        expect(page).to_have_url(f"{server}/console/login")
        page.fill("#username", agent_account)
        page.fill("#password", PASSWORD)
        page.click("#submit")
        page.wait_for_url(f"{server}/console")
        page.goto(f"{server}/console/analytics")
        expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        page.fill("#from", "2026-11-28")
        page.fill("#to", "2026-12-03")
        page.click("button[type=submit]")
        expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        expect(page.locator("#definition")).to_contain_text("resolved by the bot when no turn")
        for chart in ("volume", "resolution", "handoff_reasons", "satisfaction", "intents"):
            svg = page.locator(f"#chart-{chart} svg[role='img']")
            expect(svg).to_be_visible()
            expect(svg.locator("title").first).not_to_be_empty()
        expect(page.locator("#kpis")).to_contain_text("37.5%")  # 3 of 8 resolved
        expect(page.locator("#table-unanswered")).to_contain_text("I want a person")
        expect(page.locator("#ratings")).to_contain_text("3 of 5")
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            page.screenshot(path=str(ROOT / "docs" / "analytics.png"), full_page=True)
        page.screenshot(path=str(tmp_path / "analytics.png"), full_page=True)

        # a filter: one channel, per week
        page.select_option("#channel", "telegram")
        expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        expect(page.locator("#kpis .kpi").first).to_contain_text("2")
        page.select_option("#bucket", "week")
        expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        expect(page.locator("#table-volume")).to_contain_text("Week of")
        assert "channel=telegram" in (page.get_attribute("#csv", "href") or "")

        with page.expect_download() as info:
            page.click("#csv")
        download = info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        lines = saved.read_text().splitlines()
        assert lines[0].startswith("bucket,conversations,messages,resolved,resolution_rate")
        assert lines[1].startswith("2026-11-23,") and lines[2].startswith("2026-11-30,2,3,0")

        found = by_impact(axe_violations(page, axe_js))
        print("axe-core violations by impact:", {k: len(v) for k, v in found.items()}, found)
        assert not found.get("serious") and not found.get("critical"), found
        assert not errors, errors
    finally:
        ctx.close()
