"""A customer sends a photo of a damaged item from the widget and rates the agent who closed the
conversation (issue 22), in real headless Chromium; the agent sees the photo and the rating in the
console transcript. The photo the server keeps has no EXIF (GPS) left."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.browser.conftest import PASSWORD, axe_violations
from tests.browser.test_widget import open_widget, send
from tests.browser.test_widget_messenger import Agent, ready

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "docs"


def photo_with_gps(path: Path) -> Path:
    """A JPEG of a 'dented pan' with a GPS position and a camera model in its EXIF."""
    image = Image.new("RGB", (640, 480), (180, 150, 120))
    for x in range(200, 440):
        for y in range(180, 300):
            image.putpixel((x, y), (90, 90, 95))
    exif = Image.Exif()
    exif[0x0110] = "SecretCam 9000"  # Model
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 0.0), 3: "E", 4: (4.0, 53.0, 0.0)}  # GPSInfo
    image.save(path, "JPEG", exif=exif)
    assert Image.open(path).getexif().get(0x0110) == "SecretCam 9000"
    return path


@pytest.fixture()
def maria(playwright: Playwright, server: str, agent_account: str) -> Iterator[Agent]:
    one = Agent(playwright, server, agent_account)
    yield one
    one.api.dispose()


def shot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / name))


def test_photo_of_a_damaged_item_reaches_the_agent_and_the_customer_rates_them(
        server: str, page: Page, maria: Agent, browser: Browser, tmp_path: Path, axe_js: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    open_widget(page, server)
    send(page, "my mug arrived smashed in the box")
    expect(page.locator("[data-sb=msg-bot]").last).to_contain_text("photo", timeout=15_000)
    attach = page.locator("[data-sb=attach]")
    expect(attach).to_be_visible()
    assert attach.get_attribute("aria-label") == "Send a photo"
    page.locator("[data-sb=file]").set_input_files(str(photo_with_gps(tmp_path / "mug.jpg")))
    mine = page.locator("[data-sb=msg-user] [data-sb=photo]").last
    expect(mine).to_be_visible()
    expect(page.locator("[data-sb=row-user]").last).to_have_attribute("data-state", "sent", timeout=15_000)
    expect(page.locator("[data-sb=msg-bot]").last).to_contain_text("team", timeout=15_000)  # handed off
    cid = str(page.evaluate("window.SupportBotWidget.conversationId()"))

    # The photo survives a reload (fetched with the conversation's token) and has no EXIF any more.
    page.reload()
    ready(page)
    restored = page.locator("[data-sb=msg-user] [data-sb=photo]").last
    expect(restored).to_have_js_property("naturalWidth", 640, timeout=15_000)  # loaded, from a blob URL
    token = page.evaluate("localStorage.getItem('supportbot.token.' + location.origin)")
    history = page.request.get(f"{server}/api/v1/conversations/{cid}",
                               headers={"X-Conversation-Token": token}).json()["history"]
    attachment = next(e["attachment"] for e in history if e.get("attachment"))
    served = page.request.get(f"{server}/api/v1/conversations/{cid}/attachments/{attachment['id']}",
                              headers={"X-Conversation-Token": token})
    assert served.status == 200 and served.headers["content-type"] == "image/jpeg"
    kept = Image.open(io.BytesIO(served.body()))
    assert kept.size == (640, 480) and not kept.getexif()

    # The agent takes over and sees the photo in the console.
    maria.claim(cid)
    maria.say(cid, "Thanks for the photo, a new mug is on its way.")
    console = browser.new_page(viewport={"width": 1280, "height": 800})
    console.goto(f"{server}/console/login")
    console.fill("#username", "maria")
    console.fill("#password", PASSWORD)
    console.press("#password", "Enter")
    expect(console.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
    console.goto(f"{server}/console#{cid}")  # a link straight to the conversation
    expect(console.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
    picture = console.locator("[data-sb=transcript] img[data-sb=attachment]")
    expect(picture).to_have_js_property("naturalWidth", 640, timeout=15_000)

    # Closing asks the customer for a rating: stars and a comment, keyboard-usable.
    maria.post(f"/conversations/{cid}/close")
    card = page.locator("[data-sb=rating]")
    expect(card).to_be_visible(timeout=15_000)
    expect(card).to_contain_text("Maria Lopez")
    submit = page.locator("[data-sb=rating-submit]")
    expect(submit).to_be_disabled()
    page.get_by_role("radio", name="4 out of 5").check()
    expect(page.locator("[data-sb=star-4]")).to_have_class("on")
    page.locator("[data-sb=rating-comment]").fill("Quick, and the new mug is lovely")
    shot(page, tmp_path, "widget-rating.png")
    violations = axe_violations(page, axe_js, "#supportbot-widget")
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    submit.click()
    expect(card).to_be_hidden(timeout=15_000)
    expect(page.locator("[data-sb=msg-system]").last).to_contain_text("Thanks for rating")
    page.reload()
    ready(page)
    expect(page.locator("[data-sb=rating]")).to_have_count(0)  # asked once

    # The console transcript shows the rating (admins may read a closed conversation).
    console.reload()
    expect(console.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
    expect(console.locator("[data-sb=rating]")).to_contain_text("Rated 4/5", timeout=15_000)
    expect(console.locator("[data-sb=rating]")).to_contain_text("Quick, and the new mug is lovely")
    shot(console, tmp_path, "console-photo-rating.png")
    console.close()
