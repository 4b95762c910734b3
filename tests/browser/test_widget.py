"""The demo page and its widget in real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def open_widget(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#supportbot-widget[data-ready='1']")).to_be_attached(timeout=15_000)
    page.locator("[data-sb=launcher]").click()
    expect(page.locator("[data-sb=panel]")).to_be_visible()


def send(page: Page, text: str) -> None:
    page.locator("[data-sb=input]").fill(text)
    page.locator("[data-sb=input]").press("Enter")


def test_chat_through_the_widget(server: str, page: Page, tmp_path: Path) -> None:
    open_widget(page, server)
    bot = page.locator("[data-sb=msg-bot]")
    expect(bot.first).to_contain_text("Kiki")  # greeting from the domain file
    send(page, "where is my order?")
    expect(page.locator("[data-sb=msg-user]").last).to_have_text("where is my order?")
    expect(bot.last).to_contain_text("order number", timeout=15_000)
    send(page, "KK-204871")
    expect(bot.last).to_contain_text("ParcelPost", timeout=15_000)
    expect(page.locator("[data-sb=typing]")).to_have_text("")
    page.screenshot(path=str(tmp_path / "widget.png"))
    assert (tmp_path / "widget.png").stat().st_size > 10_000

    # The conversation survives a reload: same id, history restored.
    cid = page.evaluate("window.SupportBotWidget.conversationId()")
    page.reload()
    expect(page.locator("#supportbot-widget[data-ready='1']")).to_be_attached(timeout=15_000)
    assert page.evaluate("window.SupportBotWidget.conversationId()") == cid
    expect(page.locator("[data-sb=msg-user]")).to_have_count(2)
    expect(page.locator("[data-sb=msg-bot]").last).to_contain_text("ParcelPost")


def test_buttons_are_clickable(server: str, page: Page) -> None:
    open_widget(page, server)
    send(page, "am I talking to a bot?")
    button = page.locator("[data-sb=buttons] button").first
    expect(button).to_be_visible(timeout=15_000)
    title = button.text_content()
    assert title
    button.click()
    expect(page.locator("[data-sb=buttons]")).to_have_count(0)
    expect(page.locator("[data-sb=msg-user]").last).to_have_text(title)
    # The hand-off answer: connecting, or (no agent logged in right now) the offline notice.
    expect(page.locator("[data-sb=msg-bot]").last).to_contain_text(
        re.compile("customer service team|team isn't available"), timeout=15_000)


def test_text_is_never_markup(server: str, page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_widget(page, server)
    attack = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    send(page, attack)
    expect(page.locator("[data-sb=msg-user]").last).to_have_text(attack)
    expect(page.locator("[data-sb=msg-bot]")).to_have_count(2, timeout=15_000)
    assert page.locator("#supportbot-widget img, #supportbot-widget script").count() == 0
    assert dialogs == []
