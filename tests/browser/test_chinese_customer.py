"""Issue 9's promise in two real browser pages: a customer who writes Chinese in the widget gets
Chinese FAQ answers, fills a form in Chinese, asks for a person, and the agent's console shows the
conversation's language."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD
from tests.browser.test_widget import open_widget, send

pytestmark = pytest.mark.browser
CJK = re.compile(r"[\u4e00-\u9fff]")


def last_bot(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("[data-sb=msg-bot]").last


def test_a_chinese_customer_is_served_in_chinese_and_handed_off(
        server: str, browser: Browser, agent_account: str) -> None:  # noqa: F811
    customer_ctx = browser.new_context(locale="zh-CN")
    agent_ctx = browser.new_context()
    customer: Page = customer_ctx.new_page()
    agent: Page = agent_ctx.new_page()
    try:
        open_widget(customer, server)
        expect(customer.locator("#supportbot-widget[data-live='1']")).to_be_attached(timeout=15_000)

        bots = customer.locator("[data-sb=msg-bot]")
        before = bots.count()
        send(customer, "忘记密码了，怎么重新设置？")  # an FAQ entry with a Chinese translation
        expect(bots).to_have_count(before + 1, timeout=20_000)
        answer = last_bot(customer).inner_text()
        assert "密码" in answer and CJK.search(answer), answer

        send(customer, "我想改一下收货地址")  # the change_address form, every prompt in Chinese
        expect(last_bot(customer)).to_contain_text("订单号", timeout=20_000)
        send(customer, "订单号是KK204871")
        expect(last_bot(customer)).to_contain_text("88号", timeout=20_000)  # the street prompt's example
        send(customer, "朝阳路88号")
        expect(last_bot(customer)).to_contain_text("邮政编码", timeout=20_000)
        send(customer, "100020")
        expect(last_bot(customer)).to_contain_text("城市", timeout=20_000)
        send(customer, "北京")
        expect(last_bot(customer)).to_contain_text("KK-204871", timeout=20_000)
        expect(last_bot(customer)).to_contain_text("北京朝阳路88号")

        send(customer, "我要转人工客服")
        expect(last_bot(customer)).to_contain_text("客服", timeout=20_000)
        cid = customer.evaluate("window.SupportBotWidget.conversationId()")

        agent.goto(f"{server}/console")
        agent.fill("#username", agent_account)
        agent.fill("#password", PASSWORD)
        agent.click("#submit")
        expect(agent.locator("body[data-ready='1']")).to_be_attached(timeout=15_000)
        item = agent.locator(f"#queue [data-cid='{cid}']")
        expect(item).to_be_visible(timeout=15_000)
        item.click()
        expect(agent.locator("#conv-meta")).to_contain_text("language zh")
        expect(agent.locator("#transcript")).to_contain_text("朝阳路88号")
    finally:
        customer_ctx.close()
        agent_ctx.close()
