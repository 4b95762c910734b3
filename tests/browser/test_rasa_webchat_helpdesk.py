"""An existing Rasa widget (rasa-webchat 1.0.1, fetched by the test set-up and never committed) runs a
real Rasa 3 project on supportbot: helpdesk-assistant (read from ../shared/rasa_projects), served by
`supportbot serve` with its own rasa-sdk action server. Its open-incident form completes in the browser
through the project's validation and actions, its buttons rendered as the widget's quick replies."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.conftest import HELPDESK_PROJECT, ROOT
from tests.e2e.conftest import serve_rasa_project

pytestmark = pytest.mark.browser

# docs/rasa-helpdesk-webchat.png is this test's screenshot, refreshed with UPDATE_SCREENSHOTS=1 (a
# plain run writes it to its tmp folder and leaves the checkout as it is).
DOCS_SCREENSHOT = ROOT / "docs" / "rasa-helpdesk-webchat.png"
EMAIL = "jane.doe@example.com"
DESCRIPTION = "Outlook shows an empty inbox since this morning"
TIMEOUT_MS = 20_000

# The widget's message list grows with the conversation (instead of scrolling in its 425 px) in a tall
# window, so that the whole finished conversation fits one screenshot.
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>helpdesk-assistant on supportbot</title>
<style>body { margin: 0; background: #eef1f5; }
  .rw-messages-container { height: auto !important; max-height: none !important; }</style></head>
<body><div id="webchat"></div>
<script src="/__test__/rasa-webchat.js"></script>
<script>
  WebChat.default({selector: "#webchat", initPayload: "/greet", socketUrl: location.origin,
                   socketPath: "/socket.io/", title: "IT Helpdesk", subtitle: "helpdesk-assistant",
                   params: {storage: "session"}, customData: {language: "en"}}, null);
</script></body></html>"""


@pytest.fixture(scope="module")
def helpdesk_server(helpdesk_assets: Path, helpdesk_action_server: str,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real `supportbot serve` process for helpdesk-assistant, on the model the session trained
    (frozen mode, seed 13: no retraining), talking to the project's own action server."""
    data_dir = tmp_path_factory.mktemp("helpdesk-served")
    (data_dir / "models").symlink_to(helpdesk_assets / "models")
    with serve_rasa_project(HELPDESK_PROJECT, data_dir,
                            SUPPORTBOT_RASA__ACTION_ENDPOINT=helpdesk_action_server,
                            SUPPORTBOT_TRAIN__MODE="frozen", SUPPORTBOT_TRAIN__SEED="13",
                            SUPPORTBOT_GENERATION__BACKEND="none") as url:
        yield url, data_dir / "server.log"


def test_rasa_webchat_completes_the_helpdesk_incident_form(
        helpdesk_server: tuple[str, Path], page: Page, webchat_js: Path, tmp_path: Path) -> None:
    server, log = helpdesk_server

    def shows(locator: Locator, text: str | re.Pattern[str], step: str) -> None:
        try:
            expect(locator).to_contain_text(text, timeout=TIMEOUT_MS)
        except AssertionError as exc:
            page.screenshot(path=str(log.with_name("failed.png")))
            raise AssertionError(f"{step}: the widget did not show {text!r}\n{exc}\n"
                                 f"--- server log ({log}) ---\n{log.read_text()[-4000:]}") from None

    def say(text: str) -> None:
        page.locator(".rw-new-message").fill(text)
        page.locator(".rw-new-message").press("Enter")

    def reply_button(title: str) -> Locator:
        return page.locator(".rw-reply", has_text=re.compile(rf"^\s*{re.escape(title)}\s*$"))

    page.route(f"{server}/__test__/page",
               lambda route: route.fulfill(status=200, content_type="text/html", body=PAGE))

    def serve_js(route: Route) -> None:
        route.fulfill(status=200, content_type="application/javascript", path=str(webchat_js))

    page.route(f"{server}/__test__/rasa-webchat.js", serve_js)
    page.set_viewport_size({"width": 1100, "height": 1400})  # above the widget's 800 px mobile mode
    page.goto(f"{server}/__test__/page")
    page.locator(".rw-launcher").click()
    messages = page.locator(".rw-messages-container")
    responses = page.locator(".rw-response")

    # initPayload /greet: the project's greet story answers with utter_greet, then utter_help
    shows(messages, "Hallo! I'm your IT Helpdesk Assistant.", "greeting")
    shows(messages, "I can help you open a service request ticket", "help text after the greeting")

    say("I have a problem with my email")  # problem_email starts open_incident_form
    shows(responses.last, "What is your email address?", "the form's first question")

    say(EMAIL)  # validated by the project's validate_open_incident_form on its action server
    shows(responses.last, "What is the priority of this issue?", "the priority question")
    replies = page.locator(".rw-reply")
    expect(replies, "utter_ask_priority's three buttons as quick replies").to_have_count(
        3, timeout=TIMEOUT_MS)
    expect(replies).to_have_text(["low", "medium", "high"])
    reply_button("high").click()  # sends /inform{"priority":"high"}

    shows(responses.last, "What is the problem description for the issue?", "the description question")
    say(DESCRIPTION)
    confirm = responses.last
    shows(confirm, "Should I open an incident with the following details?", "the confirmation")
    for detail in (f"email: {EMAIL}", f"problem description: {DESCRIPTION}",
                   "title: Problem with email", "priority: high"):
        shows(confirm, detail, "a detail of the confirmation")
    expect(reply_button("Yes"), "the confirmation's Yes button").to_be_visible(timeout=TIMEOUT_MS)
    expect(reply_button("No, cancel the incident")).to_be_visible()
    reply_button("Yes").click()  # sends /affirm: the form is done, the rule runs action_open_incident

    done = responses.last
    shows(done, "An incident with the following details would be opened if ServiceNow was connected",
          "action_open_incident's answer")
    shows(done, f"email: {EMAIL}", "the opened incident's e-mail")
    shows(done, "priority: high", "the opened incident's priority")

    shot = DOCS_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / DOCS_SCREENSHOT.name
    page.locator(".rw-conversation-container").screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
