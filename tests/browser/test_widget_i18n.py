"""The widget's own strings in the customer's language, and Enter while an IME composes, in real
headless Chromium against `supportbot serve`. Test pages that embed the widget are served on the
server's own origin through `page.route`, so the widget talks to the real server (over REST:
Chromium's local-network-access checks refuse a WebSocket to 127.0.0.1 from a page that Playwright
fulfilled; the IME test uses the served demo page, whose widget sends over its WebSocket)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.browser.test_widget import open_widget

pytestmark = pytest.mark.browser

# The company's own widget strings: training_data/domain.yml (English) and its Chinese overlay
# training_data/zh/domain_responses.yml, over the widget's catalogs (bot/web/static/i18n/).
EN = {"title": "Kettle & Kin help", "placeholder": "Type your question…", "send": "Send",
      "open_label": "Chat with us", "greeting": "Hi, I'm Kiki"}
ZH = {"title": "Kettle & Kin 客服", "placeholder": "请输入您的问题…", "send": "发送",
      "open_label": "联系我们", "greeting": "您好，我是 Kiki"}
DOMAIN_STRINGS = re.compile(r"/api/v1/widget(\?|$)")


def embed(page: Page, server: str, *, lang: str | None = None, data_lang: str | None = None,
          path: str = "/i18n-test.html") -> str:
    """Serve a page that embeds the widget at `server + path`; returns its URL."""
    html_lang = f' lang="{lang}"' if lang is not None else ""
    tag_lang = f' data-lang="{data_lang}"' if data_lang is not None else ""
    html = (f"<!doctype html><html{html_lang}><head><meta charset='utf-8'><title>shop</title></head>"
            f"<body><p>A shop</p><script src='/static/widget.js'{tag_lang} defer></script></body></html>")
    url = server + path
    page.route(url, lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8",
                                                body=html))
    return url


@pytest.fixture
def context_for(browser: Browser) -> Iterator:
    """New browser contexts with a given `locale` (navigator.languages, Accept-Language)."""
    made: list[BrowserContext] = []

    def make(locale: str) -> Page:
        context = browser.new_context(locale=locale)
        made.append(context)
        return context.new_page()

    yield make
    for context in made:
        context.close()


def expect_strings(page: Page, locale: str, want: dict[str, str]) -> None:
    host = page.locator("#supportbot-widget")
    expect(host).to_have_attribute("lang", locale)
    expect(page.locator("#supportbot-widget .head b")).to_have_text(want["title"])
    expect(page.locator("[data-sb=input]")).to_have_attribute("placeholder", want["placeholder"])
    expect(page.locator("[data-sb=send]")).to_have_text(want["send"])
    expect(page.locator("[data-sb=launcher]")).to_have_text(want["open_label"])
    expect(page.locator("[data-sb=msg-bot]").first).to_contain_text(want["greeting"])
    assert page.evaluate("window.SupportBotWidget.locale()") == locale


@pytest.mark.parametrize(("html_lang", "data_lang", "browser_locale", "locale"), [
    ("zh-CN", None, "en-US", "zh-CN"),   # the page's language over the browser's
    ("en", None, "zh-CN", "en"),
    (None, None, "zh-CN", "zh-CN"),      # no lang on the page: the browser's
    ("zh-Hans", None, "en-US", "zh-CN"),
    ("zh-SG", None, "en-US", "zh-CN"),
    ("zh", None, "en-US", "zh-CN"),
    ("en", "zh", "en-US", "zh-CN"),       # the tag's data-lang over the page's
    ("fr", None, "fr-FR", "en"),          # nothing we have a catalog for: English
    ("zh-TW", None, "de-DE", "en"),       # Traditional Chinese is not zh-CN
])
def test_the_widget_speaks_the_page_or_browser_language(
        server: str, context_for, html_lang: str | None, data_lang: str | None, browser_locale: str,
        locale: str) -> None:
    page = context_for(browser_locale)
    open_widget(page, embed(page, server, lang=html_lang, data_lang=data_lang))
    expect_strings(page, locale, ZH if locale == "zh-CN" else EN)


def test_a_key_missing_from_the_chinese_catalog_falls_back_to_english(server: str, page: Page) -> None:
    def without_send(route: Route) -> None:
        catalog = route.fetch().json()
        del catalog["send"]
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps(catalog, ensure_ascii=False))

    page.route("**/static/i18n/zh-CN.json", without_send)
    page.route(DOMAIN_STRINGS, lambda route: route.abort())  # the catalogs alone
    open_widget(page, embed(page, server, lang="zh-CN"))
    expect(page.locator("#supportbot-widget")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#supportbot-widget .head b")).to_have_text("在线客服")
    expect(page.locator("[data-sb=input]")).to_have_attribute("placeholder", "请输入您的问题…")
    expect(page.locator("[data-sb=msg-bot]").first).to_have_text("您好！请问有什么可以帮您？")
    expect(page.locator("[data-sb=send]")).to_have_text("Send")  # from en.json


def test_an_unreachable_catalog_falls_back_to_english(server: str, page: Page) -> None:
    page.route("**/static/i18n/zh-CN.json", lambda route: route.abort())
    open_widget(page, embed(page, server, lang="zh-CN"))
    expect_strings(page, "en", EN)  # all English, the company's English strings included


def test_with_no_strings_at_all_the_widget_still_sends(server: str, page: Page) -> None:
    page.route("**/static/i18n/*.json", lambda route: route.fulfill(status=500, body="down"))
    page.route(DOMAIN_STRINGS, lambda route: route.abort())
    open_widget(page, embed(page, server, lang="en"))
    expect(page.locator("[data-sb=send]")).to_have_text("send")  # the key: plain, but there
    expect(page.locator("[data-sb=msg-bot]")).to_have_count(0)  # no greeting rather than "greeting"
    page.locator("[data-sb=input]").fill("where is my order?")
    page.locator("[data-sb=input]").press("Enter")
    expect(page.locator("[data-sb=msg-user]")).to_have_text(["where is my order?"])
    expect(page.locator("[data-sb=msg-bot]").last).to_contain_text("order number", timeout=15_000)


def test_enter_while_an_ime_composes_does_not_send(server: str, page: Page) -> None:
    sent: list[str] = []
    # messages only (opening the widget also creates its conversation: POST /api/v1/conversations)
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and r.url.endswith("/messages")
            else None)
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(str(payload))))
    open_widget(page, server)
    expect(page.locator("#supportbot-widget[data-live='1']")).to_be_attached(timeout=15_000)
    box = page.locator("[data-sb=input]")
    expect(box).to_be_focused()
    cdp = page.context.new_cdp_session(page)

    # Pinyin "nihao" composing into 你好, the candidate still open: Enter belongs to the IME.
    cdp.send("Input.imeSetComposition", {"text": "你好", "selectionStart": 2, "selectionEnd": 2})
    assert page.evaluate("document.querySelector('#supportbot-widget').shadowRoot"
                         ".activeElement.value").startswith("你好")
    page.keyboard.press("Enter")
    page.wait_for_timeout(700)
    expect(page.locator("[data-sb=msg-user]")).to_have_count(0)
    assert sent == []

    # The composition committed: now Enter sends it, and the bot answers. (The synthetic Enter above
    # did not go through an IME, so Chromium added the line break a real IME would have consumed.)
    cdp.send("Input.insertText", {"text": "你好"})
    assert box.input_value().strip() == "你好"
    page.keyboard.press("Enter")
    expect(page.locator("[data-sb=msg-user]")).to_have_text(["你好"])
    expect(page.locator("[data-sb=msg-bot]").nth(1)).to_be_attached(timeout=15_000)
    expect(box).to_have_value("")
    assert len(sent) == 1 and "你好" in json.loads(sent[0])["text"]
