"""The whole hand-off round trip in two real browser pages: a customer in the widget, an agent in
the console."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD
from tests.browser.test_widget import open_widget, send

pytestmark = pytest.mark.browser


def test_customer_asks_for_a_human_and_the_agent_takes_over(
        server: str, browser: Browser, agent_account: str, tmp_path: Path) -> None:
    agent_ctx, customer_ctx = browser.new_context(), browser.new_context()
    agent: Page = agent_ctx.new_page()
    customer: Page = customer_ctx.new_page()
    try:
        agent.goto(f"{server}/console")
        expect(agent).to_have_url(f"{server}/console/login")
        agent.fill("#username", agent_account)
        agent.fill("#password", PASSWORD)
        agent.click("#submit")
        expect(agent.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)

        open_widget(customer, server)
        expect(customer.locator("#supportbot-widget[data-live='1']")).to_be_attached(timeout=15_000)
        send(customer, "I want to talk to a real person")
        expect(customer.locator("[data-sb=msg-bot]").last).to_contain_text("team", timeout=15_000)
        cid = customer.evaluate("window.SupportBotWidget.conversationId()")
        send(customer, "<b>my</b> kettle leaks")

        item = agent.locator(f"#queue [data-cid='{cid}']")
        expect(item).to_be_visible(timeout=15_000)
        item.click()
        expect(agent.locator("#transcript")).to_contain_text("<b>my</b> kettle leaks")
        expect(agent.locator("#conv-meta")).to_contain_text("customer_asked")
        agent.click("#claim")
        expect(customer.locator("[data-sb=msg-system]").last).to_contain_text("Maria Lopez",
                                                                               timeout=15_000)
        agent.fill("#reply", "Hi, Maria here. <i>Sorry</i> about the kettle!")
        agent.click("#send")
        agent_msg = customer.locator("[data-sb=msg-agent]").last
        expect(agent_msg).to_contain_text("Hi, Maria here. <i>Sorry</i> about the kettle!", timeout=15_000)
        expect(agent_msg).to_contain_text("Maria Lopez")
        assert customer.locator("[data-sb=messages] i, [data-sb=messages] b").count() == 0
        assert agent.locator("#transcript b, #transcript i").count() == 0
        expect(agent.locator("#transcript .agent")).to_contain_text("Maria here")
        agent.screenshot(path=str(tmp_path / "console.png"))
        customer.screenshot(path=str(tmp_path / "widget-agent.png"))

        agent.click("#handback")
        expect(customer.locator("[data-sb=msg-bot]").last).to_contain_text("You're back with Kiki",
                                                                            timeout=15_000)
        send(customer, "where is my order?")
        expect(customer.locator("[data-sb=msg-bot]").last).to_contain_text("order number", timeout=15_000)
    finally:
        agent_ctx.close()
        customer_ctx.close()
