"""An existing Rasa widget (rasa-webchat 1.0.1 from the npm registry, fetched by the test set-up and
never committed) talks to supportbot unchanged over the socket.io channel."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>rasa-webchat test</title></head>
<body><div id="webchat"></div>
<script src="/__test__/rasa-webchat.js"></script>
<script>
  WebChat.default({selector: "#webchat", initPayload: "/greet", socketUrl: location.origin,
                   socketPath: "/socket.io/", title: "Rasa widget", params: {storage: "session"},
                   customData: {language: "en"}}, null);
</script></body></html>"""


def test_rasa_webchat_talks_to_supportbot(server: str, page: Page, webchat_js: Path, tmp_path: Path) -> None:
    def serve_page(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=PAGE)

    def serve_js(route: Route) -> None:
        route.fulfill(status=200, content_type="application/javascript", path=str(webchat_js))

    page.route(f"{server}/__test__/page", serve_page)
    page.route(f"{server}/__test__/rasa-webchat.js", serve_js)
    page.goto(f"{server}/__test__/page")
    page.locator(".rw-launcher").click()
    responses = page.locator(".rw-response")
    expect(responses.first).to_be_visible(timeout=20_000)  # the answer to initPayload /greet
    page.locator(".rw-new-message").fill("where is my order?")
    page.locator(".rw-new-message").press("Enter")
    expect(responses.last).to_contain_text("order number", timeout=20_000)
    page.locator(".rw-new-message").fill("are you a bot?")
    page.locator(".rw-new-message").press("Enter")
    expect(page.locator(".rw-reply").first).to_contain_text("Talk to a person", timeout=20_000)
    page.screenshot(path=str(tmp_path / "rasa-webchat.png"))
