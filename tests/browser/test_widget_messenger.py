"""The widget as a Messenger-class chat in real headless Chromium (issue 22): scrolling and unread
counts, safe rich text and timestamps, send states with retry and an offline queue, availability and
the e-mail field, thumbs on answers, a new conversation, mobile and keyboard use, and axe-core."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import APIRequestContext, Browser, Page, Playwright, expect

from tests.browser.conftest import PASSWORD, axe_violations
from tests.browser.test_widget import open_widget, send

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
DOMAIN_WIDGET: dict[str, str] = {}


def widget_strings(server: str, page: Page) -> dict[str, str]:
    if not DOMAIN_WIDGET:
        DOMAIN_WIDGET.update(page.request.get(f"{server}/api/v1/widget?lang=en").json())
    return DOMAIN_WIDGET


def ready(page: Page) -> None:
    expect(page.locator("#supportbot-widget[data-ready='1']")).to_be_attached(timeout=15_000)


def at_bottom(page: Page) -> bool:
    return bool(page.locator("[data-sb=messages]").evaluate(
        "e => e.scrollTop + e.clientHeight >= e.scrollHeight - 2"))


def expect_at_bottom(page: Page) -> None:
    for _ in range(50):
        if at_bottom(page):
            return
        page.wait_for_timeout(100)
    raise AssertionError("the message list is not scrolled to the newest message")


class Agent:
    """A console agent through the console's JSON API (log-in with CSRF, claim, reply)."""

    def __init__(self, playwright: Playwright, server: str, username: str) -> None:
        self.api: APIRequestContext = playwright.request.new_context(base_url=server)
        csrf = self.api.get("/console/api/session").json()["csrf"]
        login = json.dumps({"username": username, "password": PASSWORD})
        done = self.api.post("/console/api/login", data=login,
                             headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
        assert done.ok, done.text()
        self.csrf = done.json()["csrf"]

    def post(self, path: str, body: dict[str, Any] | None = None) -> None:
        done = self.api.post(f"/console/api{path}", data=json.dumps(body or {}),
                             headers={"X-CSRF-Token": self.csrf, "Content-Type": "application/json"})
        assert done.ok, done.text()

    def claim(self, cid: str) -> None:
        self.post(f"/conversations/{cid}/claim")

    def say(self, cid: str, text: str) -> None:
        self.post(f"/conversations/{cid}/messages", {"text": text})


@pytest.fixture()
def agent(playwright: Playwright, server: str, agent_account: str) -> Iterator[Agent]:
    one = Agent(playwright, server, agent_account)
    yield one
    one.api.dispose()


def handed_off(page: Page) -> str:
    send(page, "I want to talk to a real person")
    expect(page.locator("[data-sb=msg-bot]").last).to_contain_text("team", timeout=15_000)
    return str(page.evaluate("window.SupportBotWidget.conversationId()"))


# 1. Scroll to the newest message on open, reload and arrival; unread badge and title count.
def test_scrolls_to_the_newest_and_counts_unread_while_closed(server: str, page: Page, agent: Agent) -> None:
    page.set_viewport_size({"width": 1280, "height": 640})
    open_widget(page, server)
    for question in ["where is my order?", "how long does delivery take?", "can I return a mug?",
                     "do you ship abroad?", "how do I pay?"]:
        count = page.locator("[data-sb=msg-bot]").count()
        send(page, question)
        expect(page.locator("[data-sb=msg-bot]")).not_to_have_count(count, timeout=15_000)
        expect_at_bottom(page)  # on arrival
    assert page.locator("[data-sb=messages]").evaluate("e => e.scrollHeight > e.clientHeight + 100")
    page.reload()
    ready(page)
    expect(page.locator("[data-sb=panel]")).to_be_visible()
    expect_at_bottom(page)  # after a reload (the panel stays open)

    cid = handed_off(page)
    agent.claim(cid)
    expect(page.locator("[data-sb=msg-system]").last).to_contain_text("Maria Lopez", timeout=15_000)
    title = page.title()
    page.locator("[data-sb=close]").click()
    expect(page.locator("[data-sb=panel]")).to_be_hidden()
    badge = page.locator("[data-sb=badge]")
    expect(badge).to_be_hidden()
    agent.say(cid, "Hi, Maria here. Let me look into that.")
    expect(badge).to_have_text("1", timeout=15_000)
    expect(page).to_have_title(f"(1) {title}")
    agent.say(cid, "Found it: it ships today.")
    expect(badge).to_have_text("2", timeout=15_000)
    expect(page).to_have_title(f"(2) {title}")
    assert "2" in (page.locator("[data-sb=launcher]").get_attribute("aria-label") or "")
    page.locator("[data-sb=launcher]").click()
    expect(badge).to_be_hidden()
    expect(page).to_have_title(title)
    expect(page.locator("[data-sb=msg-agent]").last).to_be_in_viewport()
    expect_at_bottom(page)  # on reopen
    page.locator("[data-sb=close]").click()
    page.locator("[data-sb=launcher]").click()
    expect_at_bottom(page)


# 2. Clickable links (http(s), mailto only), a safe Markdown subset, timestamps.
def test_links_markdown_and_timestamps(server: str, page: Page, agent: Agent) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_widget(page, server)
    send(page, "is https://example.com/pans legit? <b>x</b>")
    user = page.locator("[data-sb=msg-user]").last
    expect(user.locator("a")).to_have_attribute("href", "https://example.com/pans")
    expect(user).to_have_text("is https://example.com/pans legit? <b>x</b>")
    cid = handed_off(page)
    agent.claim(cid)
    agent.say(cid, "**Good news**, here is what to do:\n- read [our returns page](https://example.com/returns)\n"
                   "- or write to mailto:help@example.com.\n- not [this](javascript:alert(1)) "
                   "<img src=x onerror=alert(2)> nor data:text/html,<script>alert(3)</script>")
    msg = page.locator("[data-sb=msg-agent]").last
    expect(msg.locator("strong")).to_have_text("Good news", timeout=15_000)
    expect(msg.locator("li")).to_have_count(3)
    hrefs = msg.locator("a").evaluate_all("as => as.map(a => a.href)")
    assert hrefs == ["https://example.com/returns", "mailto:help@example.com"], hrefs
    assert msg.locator("a").first.get_attribute("rel") == "noopener noreferrer nofollow"
    expect(msg).to_contain_text("<img src=x onerror=alert(2)>")
    assert page.locator("#supportbot-widget img, #supportbot-widget script").count() == 0
    assert msg.locator("li").nth(2).locator("a").count() == 0  # javascript: stays text
    times = page.locator("[data-sb=row-user] time, [data-sb=row-bot] time, [data-sb=row-agent] time")
    assert times.count() >= 4
    for stamp in times.evaluate_all("ts => ts.map(t => [t.getAttribute('datetime'), t.textContent])"):
        assert re.match(r"\d{4}-\d\d-\d\dT", stamp[0]) and re.search(r"\d{1,2}\D\d\d", stamp[1]), stamp
    page.reload()  # history keeps its timestamps and rich text
    ready(page)
    expect(page.locator("[data-sb=msg-agent]").last.locator("strong")).to_have_text("Good news")
    assert dialogs == []


# 3. Send states, retry, a reconnecting banner, an offline queue sent in order.
NO_SOCKET = "window.WebSocket = function () { throw new Error('no sockets in this test'); };"


def test_failed_message_is_retried_with_its_id(server: str, page: Page) -> None:
    page.add_init_script(NO_SOCKET)  # REST only, so the route below sees every send
    sent_ids: list[str] = []

    def refuse(route: Any) -> None:
        sent_ids.append(json.loads(route.request.post_data or "{}").get("message_id"))
        route.fulfill(status=500, content_type="application/json", body='{"error": "internal"}')

    open_widget(page, server)
    page.route("**/api/v1/conversations/*/messages", refuse)
    send(page, "where is my order?")
    row = page.locator("[data-sb=row-user]").last
    expect(row).to_have_attribute("data-state", "failed")
    expect(row.locator("[data-sb=retry]")).to_be_visible()
    expect(page.locator("[data-sb=msg-error]")).to_have_count(1)
    expect(page.locator("[data-sb=typing]")).to_have_text("")
    page.unroute("**/api/v1/conversations/*/messages")

    kept: list[str] = []
    page.route("**/api/v1/conversations/*/messages",
               lambda route: (kept.append(json.loads(route.request.post_data or "{}")["message_id"]),
                              route.continue_()))
    row.locator("[data-sb=retry]").click()
    expect(row).to_have_attribute("data-state", "sent", timeout=15_000)
    expect(page.locator("[data-sb=msg-bot]").last).to_contain_text("order number", timeout=15_000)
    expect(page.locator("[data-sb=msg-error]")).to_have_count(0)
    assert kept == sent_ids[:1]  # the same message id: the server's dedupe makes it safe


def test_offline_messages_queue_and_go_in_order(server: str, page: Page) -> None:
    open_widget(page, server)
    expect(page.locator("#supportbot-widget[data-live='1']")).to_be_attached(timeout=15_000)
    page.context.set_offline(True)
    send(page, "where is my order?")
    send(page, "KK-204871")
    banner = page.locator("[data-sb=banner]")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(widget_strings(server, page)["reconnecting"])
    rows = page.locator("[data-sb=row-user]")
    expect(rows.nth(0)).to_have_attribute("data-state", "queued")
    expect(rows.nth(1)).to_have_attribute("data-state", "queued")
    page.wait_for_timeout(1500)
    expect(page.locator("[data-sb=typing]")).to_have_text("")  # no "typing…" while nothing is sent
    page.context.set_offline(False)
    expect(rows.nth(1)).to_have_attribute("data-state", "sent", timeout=20_000)
    expect(rows.nth(0)).to_have_attribute("data-state", "sent")
    expect(banner).to_be_hidden(timeout=15_000)
    bots = page.locator("[data-sb=msg-bot]")
    expect(bots.last).to_contain_text("ParcelPost", timeout=15_000)  # the order number came second
    texts = bots.all_text_contents()
    assert any("order number" in t for t in texts[:-1]), texts


# 4. Availability copy and the e-mail field when nobody is there.
def test_availability_copy_and_email_when_nobody_is_there(server: str, page: Page) -> None:
    open_widget(page, server)
    strings = widget_strings(server, page)
    expect(page.locator("#supportbot-widget[data-available='1'], #supportbot-widget[data-available='0']")
           ).to_be_attached(timeout=15_000)
    there = page.request.get(f"{server}/api/v1/availability").json()
    subtitle = page.locator("[data-sb=subtitle]")
    assert strings["subtitle"] not in subtitle.text_content()  # never "day and night"
    if there["available"]:
        expect(subtitle).to_have_text(strings["subtitle_online"])
        expect(page.locator("[data-sb=contact]")).to_be_hidden()
        return
    expect(subtitle).to_have_text(strings["subtitle_offline"])
    field = page.locator("[data-sb=email]")
    expect(field).to_be_visible()
    field.fill("not an address")
    page.locator("[data-sb=email-save]").click()
    expect(page.locator("[data-sb=email-note]")).to_have_text(strings["email_invalid"])
    field.fill("kim@example.com")
    page.locator("[data-sb=email-save]").click()
    expect(page.locator("[data-sb=msg-system]").last).to_contain_text("kim@example.com")
    expect(page.locator("[data-sb=contact]")).to_be_hidden()
    cid = page.evaluate("window.SupportBotWidget.conversationId()")
    token = page.evaluate("localStorage.getItem('supportbot.token.' + location.origin)")
    state = page.request.get(f"{server}/api/v1/conversations/{cid}", headers={"X-Conversation-Token": token})
    assert state.json()["contact_email"] == "kim@example.com"
    page.reload()
    ready(page)
    expect(page.locator("[data-sb=contact]")).to_be_hidden()  # given once: not asked again


# 5. Thumbs up/down on the bot's answers, stored per turn.
def test_thumbs_on_bot_answers(server: str, page: Page) -> None:
    open_widget(page, server)
    send(page, "how long does delivery take?")
    bot_row = page.locator("[data-sb=row-bot]").last
    expect(bot_row.locator("[data-sb=msg-bot]")).not_to_have_text("", timeout=15_000)
    up, down = bot_row.locator("[data-sb=vote-up]"), bot_row.locator("[data-sb=vote-down]")
    expect(up).to_be_visible(timeout=15_000)
    assert page.locator("[data-sb=row-bot]").first.locator("[data-sb=votes]").count() == 0  # not the greeting
    with page.expect_response(re.compile(r"/votes$")) as voted:
        down.click()
    assert voted.value.status == 204
    expect(down).to_have_attribute("aria-pressed", "true")
    with page.expect_response(re.compile(r"/votes$")) as voted:
        up.click()
    assert voted.value.status == 204
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(down).to_have_attribute("aria-pressed", "false")
    expect(bot_row.locator("[data-sb=vote-thanks]")).not_to_have_text("")
    page.reload()
    ready(page)
    expect(page.locator("[data-sb=row-bot]").last.locator("[data-sb=vote-up]")).to_be_visible()


# 6. Start a new conversation; the old one stays.
def test_start_a_new_conversation(server: str, page: Page) -> None:
    open_widget(page, server)
    send(page, "where is my order?")
    expect(page.locator("[data-sb=msg-bot]").last).to_contain_text("order number", timeout=15_000)
    old = page.evaluate("window.SupportBotWidget.conversationId()")
    old_token = page.evaluate("localStorage.getItem('supportbot.token.' + location.origin)")
    expect(page.locator("#supportbot-widget[data-live='1']")).to_be_attached(timeout=15_000)
    new = page.locator("[data-sb=new]")
    expect(new).to_have_attribute("aria-label", widget_strings(server, page)["new_conversation"])
    new.click()
    expect(page.locator("[data-sb=msg-user]")).to_have_count(0)
    expect(page.locator("[data-sb=msg-bot]")).to_have_count(1)  # the greeting
    fresh = page.evaluate("window.SupportBotWidget.conversationId()")
    assert fresh != old
    expect(page.locator("[data-sb=input]")).to_be_focused()
    expect(page.locator("#supportbot-widget[data-live='1']")).to_be_attached(timeout=15_000)
    send(page, "KK-204871")
    expect(page.locator("[data-sb=msg-bot]")).to_have_count(2, timeout=15_000)
    old_state = page.request.get(f"{server}/api/v1/conversations/{old}",
                                 headers={"X-Conversation-Token": old_token}).json()
    assert [e["text"] for e in old_state["history"] if e["role"] == "user"] == ["where is my order?"]
    page.reload()
    ready(page)
    assert page.evaluate("window.SupportBotWidget.conversationId()") == fresh
    expect(page.locator("[data-sb=msg-user]")).to_have_count(1)


# 7. Mobile, keyboard, contrast, no 404.
def test_mobile_full_screen(server: str, browser: Browser, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        open_widget(page, server)
        box = page.locator("[data-sb=panel]").bounding_box()
        assert box == {"x": 0, "y": 0, "width": 390, "height": 844}, box
        assert page.locator("[data-sb=input]").evaluate("e => getComputedStyle(e).fontSize") == "16px"
        send(page, "am I talking to a bot?")
        expect(page.locator("[data-sb=buttons] button").first).to_be_visible(timeout=15_000)
        small = page.locator("#supportbot-widget").evaluate("""h => Array.from(
            h.shadowRoot.querySelectorAll('button, input, textarea')).filter(b => b.offsetParent)
            .map(b => [b.getAttribute('data-sb') || b.textContent, b.getBoundingClientRect()])
            .filter(x => x[1].width < 44 || x[1].height < 44).map(x => x[0])""")
        assert small == [], small
        screenshot(page, tmp_path, "widget-mobile.png")
        page.set_viewport_size({"width": 844, "height": 390})  # landscape: still the whole screen
        log = page.locator("[data-sb=messages]").bounding_box()
        assert log is not None and log["height"] >= 180, log
        page.locator("[data-sb=close]").click()
        expect(page.locator("[data-sb=launcher]")).to_be_visible()
    finally:
        context.close()


def test_keyboard_escape_focus_and_aria(server: str, page: Page) -> None:
    page.goto(server)
    ready(page)
    launcher = page.locator("[data-sb=launcher]")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-sb=panel]")).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.locator("[data-sb=input]")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("[data-sb=panel]")).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    page.locator("[data-sb=close]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-sb=panel]")).to_be_hidden()
    expect(launcher).to_be_focused()
    # Focus rings >= 3:1 and the typing line >= 4.5:1 against what is behind them.
    page.keyboard.press("Enter")
    expect(page.locator("[data-sb=input]")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("[data-sb=send]")).to_be_focused()
    ring = page.locator("[data-sb=send]").evaluate("e => getComputedStyle(e).outlineColor")
    assert contrast(ring, "rgb(255, 255, 255)") >= 3, ring
    typing = page.locator("[data-sb=typing]").evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
    assert contrast(*typing) >= 4.5, typing


def test_first_visit_has_no_failed_requests(server: str, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    failed: list[str] = []
    errors: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        open_widget(page, server)
        expect(page.locator("#supportbot-widget[data-live='1']")).to_be_attached(timeout=15_000)
        page.wait_for_timeout(500)
        assert failed == [] and errors == [], (failed, errors)
    finally:
        context.close()


def channel(c: float) -> float:
    c /= 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def contrast(fg: str, bg: str) -> float:
    def lum(css: str) -> float:
        r, g, b = (float(x) for x in re.findall(r"[\d.]+", css)[:3])
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    hi, lo = sorted([lum(fg), lum(bg)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=str(ROOT / "docs" / name))


def test_desktop_screenshot(server: str, page: Page, tmp_path: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    open_widget(page, server)
    send(page, "how long does delivery take?")
    expect(page.locator("[data-sb=vote-up]").last).to_be_visible(timeout=15_000)
    send(page, "where is my order?")
    expect(page.locator("[data-sb=msg-bot]").last).to_contain_text("order number", timeout=15_000)
    screenshot(page, tmp_path, "widget-desktop.png")
    assert (tmp_path / "widget-desktop.png").stat().st_size > 10_000


def test_widget_passes_axe_core(server: str, page: Page, axe_js: Path) -> None:
    page.goto(server)
    ready(page)
    closed = axe_violations(page, axe_js, "#supportbot-widget")
    page.locator("[data-sb=launcher]").click()
    send(page, "how long does delivery take?")
    expect(page.locator("[data-sb=vote-up]").last).to_be_visible(timeout=15_000)
    opened = axe_violations(page, axe_js, "#supportbot-widget")
    print("axe-core violations: closed", closed, "open", opened)
    serious = [v for v in closed + opened if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


if os.environ.get("SB_DEMO_ASSETS"):  # a developer's shortcut: reuse a built model and index
    @pytest.fixture(scope="session")
    def demo_assets() -> Path:
        return Path(os.environ["SB_DEMO_ASSETS"])
