"""The agent console as agents and admins use it, in real Chromium: the login error, the 403 page,
the favicon, a keyboard-only queue, Enter / Shift+Enter, a canned reply through `/`, the filters,
new hand-off alerts, disabling an agent and resetting a password, and axe-core on every page."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import PASSWORD, axe_violations, by_impact

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "docs"
AGENT, AGENT_PASSWORD = "dash.agent", "dash-agent-password"
TEMP = "dash.temp"
# A stand-in for the Notification API that records what would have been shown.
NOTIFICATIONS = """(function () {
  window.__notes = [];
  function N(title, options) { window.__notes.push(title); this.onclick = null; }
  N.permission = "granted";
  N.requestPermission = function () { return Promise.resolve("granted"); };
  window.Notification = N;
})();"""


def shot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / name))


@pytest.fixture(scope="module")
def admin_api(server: str, agent_account: str) -> Iterator[tuple[httpx.Client, str]]:
    """An admin's (maria's) console session over HTTP, with its CSRF token; makes the test agents."""
    with httpx.Client(base_url=server, timeout=30) as c:
        csrf = c.get("/console/api/session").json()["csrf"]
        r = c.post("/console/api/login", json={"username": agent_account, "password": PASSWORD},
                   headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        csrf = r.json()["csrf"]
        for name in (AGENT, TEMP):
            made = c.post("/console/api/agents", json={"username": name, "display_name": name.title(),
                                                       "password": AGENT_PASSWORD, "role": "agent"},
                          headers={"X-CSRF-Token": csrf})
            assert made.status_code in (201, 422), made.text
        yield c, csrf


def hand_off(server: str, cid: str, *texts: str) -> dict[str, str]:
    """A customer (over the REST API) who asks for a person, then says `texts`; their token header."""
    with httpx.Client(base_url=server, timeout=60) as c:
        created = c.post("/api/v1/conversations", json={"conversation_id": cid})
        assert created.status_code == 201, created.text
        token = {"X-Conversation-Token": created.json()["conversation_token"]}
        for text in ("I want to talk to a real person", *texts):
            r = c.post(f"/api/v1/conversations/{cid}/messages", json={"text": text}, headers=token)
            assert r.status_code == 200, r.text
    return token


def log_in(page: Page, server: str, username: str, password: str) -> None:
    page.goto(f"{server}/console/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.press("#password", "Enter")
    expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)


def tab_to(page: Page, check: str, limit: int = 40) -> None:
    """Press Tab until `check` (a JS expression on `el`, the focused element) holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!({check}); }})()"):
            return
    raise AssertionError(f"Tab never reached {check}")


def test_login_error_forbidden_page_and_favicon(server: str, browser: Browser, admin_api: tuple,
                                                tmp_path: Path) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        page.goto(f"{server}/console/login")
        page.fill("#username", AGENT)
        page.fill("#password", "not-the-password")
        page.click("#submit")
        expect(page.locator("#error")).to_have_text("Wrong user name or password.")
        expect(page.locator("#username")).to_have_value(AGENT)  # kept
        expect(page.locator("#password")).to_be_focused()
        shot(page, tmp_path, "console-login.png")
        icon = page.locator("link[rel=icon]").get_attribute("href")
        assert page.request.get(f"{server}{icon}").status == 200
        page.fill("#password", AGENT_PASSWORD)
        page.click("#submit")
        expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        response = page.goto(f"{server}/console/admin")
        assert response is not None and response.status == 403
        expect(page.locator("h2")).to_have_text("Admins only")
        assert page.locator("pre").count() == 0 and "{" not in page.locator("body").inner_text()
        api = page.request.get(f"{server}/console/admin", headers={"Accept": "application/json"})
        assert api.status == 403 and api.json()["error"] == "forbidden"
    finally:
        ctx.close()


def test_agent_works_the_queue_by_keyboard_with_a_canned_reply(
        server: str, browser: Browser, admin_api: tuple, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:8]
    first, second = f"kbd-{token}-first-with-a-rather-long-conversation-id", f"kbd-{token}-second"
    # An admin makes the canned reply on the admin page.
    admin_ctx = browser.new_context()
    admin = admin_ctx.new_page()
    ctx: BrowserContext = browser.new_context()
    ctx.add_init_script(NOTIFICATIONS)
    page = ctx.new_page()
    try:
        log_in(admin, server, "maria", PASSWORD)
        admin.goto(f"{server}/console/admin")
        expect(admin.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        shortcut = f"thanks{token}"
        admin.fill("#canned-shortcut", shortcut)
        admin.fill("#canned-title-input", "Thanks for waiting")
        admin.fill("#canned-text", "Thanks for waiting, I'm on it.")
        admin.click("#canned-save")
        expect(admin.locator(f"#canned tr[data-shortcut='{shortcut}']")).to_contain_text("on it")

        customer = hand_off(server, first, f"about my kettle {token}", "it's jo@example.com",
                 *[f"line {i} of a long story {token}" for i in range(8)])
        hand_off(server, second, f"also about {token}")
        log_in(page, server, AGENT, AGENT_PASSWORD)
        page.click("#sound")  # a click: the gesture the browser wants
        expect(page.locator("#sound")).to_have_attribute("aria-pressed", "true")
        # Keyboard only from here: search, then Tab to the queue, arrows, Enter.
        page.focus("#f-q")
        page.keyboard.type(token)
        page.keyboard.press("Enter")
        cards = page.locator("#queue .item")
        expect(cards).to_have_count(2, timeout=15_000)
        card = page.locator(f"#queue [data-cid='{first}']")
        expect(card).to_contain_text("jo@example.com")  # the customer's address, not the id
        expect(card).to_have_attribute("title", first)
        expect(card.locator(".badge")).to_have_text("11")  # unread customer messages
        assert first not in card.inner_text()  # the long id is shortened (in full in title/label)
        assert card.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        tab_to(page, "el.closest('#queue') && el.classList.contains('item')")
        before = page.evaluate("document.activeElement.dataset.cid")
        page.keyboard.press("ArrowDown")
        after = page.evaluate("document.activeElement.dataset.cid")
        assert {before, after} == {first, second}
        if after != first:
            page.keyboard.press("ArrowUp")
        assert page.evaluate("document.activeElement.dataset.cid") == first
        page.keyboard.press("Enter")
        expect(page.locator("#conv-title")).to_have_attribute("title", first)
        expect(card.locator(".badge")).to_have_count(0)
        tab_to(page, "el.id === 'claim'")
        page.keyboard.press("Enter")
        reply = page.get_by_label("Reply to the customer")
        expect(reply).to_be_focused(timeout=15_000)
        expect(reply).to_be_in_viewport()
        expect(page.locator("#transcript .msg").last).to_be_in_viewport()  # scrolled to the latest
        # "/" opens the canned replies; Enter inserts; Shift+Enter a new line; Enter sends.
        page.keyboard.type(f"/thanks{token[:3]}")
        expect(page.locator("#canned [role=option]")).to_have_count(1)
        page.keyboard.press("Enter")
        expect(reply).to_have_value("Thanks for waiting, I'm on it.")
        page.keyboard.press("Shift+Enter")
        page.keyboard.type("Second line.")
        expect(reply).to_have_value("Thanks for waiting, I'm on it.\nSecond line.")
        page.keyboard.press("Enter")
        expect(reply).to_have_value("")
        expect(page.locator("#transcript .agent").last).to_contain_text("Second line.")
        expect(page.locator("#transcript .msg").last).to_be_in_viewport()
        history = httpx.get(f"{server}/api/v1/conversations/{first}", headers=customer).json()["history"]
        assert history[-1]["text"] == "Thanks for waiting, I'm on it.\nSecond line."
        # Filters: status "assigned" leaves the waiting list empty and shows it in mine.
        page.select_option("#f-status", "assigned")
        page.click("#f-apply")
        expect(page.locator("#queue .item")).to_have_count(0)
        expect(page.locator(f"#mine [data-cid='{first}']")).to_be_visible()
        page.select_option("#f-status", "waiting")
        page.click("#f-apply")
        expect(page.locator(f"#queue [data-cid='{second}']")).to_be_visible()
        expect(page.locator("#mine .item")).to_have_count(0)
        page.click("#f-clear")
        # A new hand-off: a desktop notification.
        third = f"kbd-{token}-third"
        hand_off(server, third)
        expect(page.locator("body")).to_have_attribute("data-last-alert", third, timeout=15_000)
        assert any("New hand-off" in n for n in page.evaluate("window.__notes"))
        page.fill("#f-q", token)
        page.press("#f-q", "Enter")
        expect(cards).to_have_count(2)
        page.locator(f"#mine [data-cid='{first}']").click()
        expect(page.locator("#conv-title")).to_have_attribute("title", first)
        shot(page, tmp_path, "console.png")
        # An admin filters by agent: the conversation the agent has.
        admin.goto(f"{server}/console")
        expect(admin.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        admin.fill("#f-agent", AGENT)
        admin.click("#f-apply")
        expect(admin.locator(f"#others [data-cid='{first}']")).to_contain_text(AGENT)
    finally:
        admin_ctx.close()
        ctx.close()


def test_admin_disables_an_agent_and_resets_a_password(server: str, browser: Browser, admin_api: tuple,
                                                       tmp_path: Path) -> None:
    admin_ctx, other_ctx = browser.new_context(), browser.new_context()
    admin, other = admin_ctx.new_page(), other_ctx.new_page()
    try:
        log_in(admin, server, "maria", PASSWORD)
        admin.goto(f"{server}/console/admin")
        row = admin.locator(f"#agents tr[data-username='{TEMP}']")
        row.locator("button[data-action=disable]").click()
        expect(row.locator(".status")).to_have_text("disabled")
        other.goto(f"{server}/console/login")
        other.fill("#username", TEMP)
        other.fill("#password", AGENT_PASSWORD)
        other.click("#submit")
        expect(other.locator("#error")).to_have_text("Wrong user name or password.")
        row.locator("button[data-action=enable]").click()
        expect(row.locator(".status")).to_have_text("active")
        new = "a-fresh-password-42"
        row.get_by_label(f"New password for {TEMP}").fill(new)
        row.get_by_role("button", name="Reset password").click()
        expect(admin.locator("#agents-error-done")).to_contain_text("changed")  # a success, not an error
        expect(admin.locator("#agents-error")).to_have_text("")
        shot(admin, tmp_path, "console-admin.png")
        other.fill("#password", AGENT_PASSWORD)
        other.click("#submit")
        expect(other.locator("#error")).to_have_text("Wrong user name or password.")
        log_in(other, server, TEMP, new)
    finally:
        admin_ctx.close()
        other_ctx.close()


def test_axe_finds_no_serious_or_critical_violations(server: str, browser: Browser, admin_api: tuple,
                                                      axe_js: Path, tmp_path: Path) -> None:
    ctx = browser.new_context(bypass_csp=True)  # (only so that axe itself can be injected)
    page = ctx.new_page()
    report: dict[str, dict[str, list[str]]] = {}
    try:
        page.goto(f"{server}/console/login")
        page.fill("#username", "maria")
        page.fill("#password", "wrong-password-here")
        page.click("#submit")
        expect(page.locator("#error")).not_to_be_empty()
        report["login"] = by_impact(axe_violations(page, axe_js))
        log_in(page, server, "maria", PASSWORD)
        cid = f"axe-{uuid.uuid4().hex[:8]}"
        hand_off(server, cid, "my kettle is broken")
        page.reload()
        expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        page.locator(f"#queue [data-cid='{cid}']").click()
        expect(page.locator("#conv-title")).to_have_attribute("title", cid)
        report["console"] = by_impact(axe_violations(page, axe_js))
        page.goto(f"{server}/console/admin")
        expect(page.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        report["admin"] = by_impact(axe_violations(page, axe_js))
    finally:
        ctx.close()
    (tmp_path / "axe.json").write_text(json.dumps(report, indent=1))
    print("axe-core violations by page and impact:", json.dumps(report))
    for name, found in report.items():
        assert not found.get("serious") and not found.get("critical"), (name, found)
