"""A Chinese-speaking customer fills a form in Chinese through the real pipeline (demo models, real
Redis): every prompt the bot sends is the zh overlay's, and the slots are filled from Chinese answers
(full-width digits, order numbers next to Chinese characters, a Chinese street and postcode).

The form starts with a Chinese message, which sets the conversation's language (language
detection), and then the form's button payload (a payload never travels with text), so the test
does not depend on how the intent model reads Chinese. The answers after it go through the intent
model.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest

from bot.config import Settings
from bot.services import Services, build_services
from bot.types import Message, Reply

pytestmark = pytest.mark.integration
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_WORDS = re.compile(r"\b(?:the|your|order number|please|thanks|postcode|street)\b", re.I)


@pytest.fixture
async def services(app_settings: Settings, demo_models: tuple) -> AsyncIterator[Services]:
    async with build_services(app_settings, demo_models, generator=None) as s:
        yield s


async def say(services: Services, cid: str, text: str = "", payload: str | None = None) -> list[Reply]:
    return await services.pipeline.handle(Message(channel="web", conversation_id=cid,
                                                  message_id=uuid.uuid4().hex, text=text, payload=payload))


def zh(services: Services, response: str, **values: str) -> set[str]:
    """The zh overlay's variants of a response, filled in."""
    variants = services.domain.translations["zh"].responses[response]
    return {v.text.format(**values) for v in variants}


def assert_chinese(replies: list[Reply]) -> None:
    for reply in replies:
        assert CJK.search(reply.text) and not ENGLISH_WORDS.search(reply.text), reply.text
        assert all(CJK.search(b.title) for b in reply.buttons), reply.buttons


async def test_change_address_form_in_chinese(services: Services) -> None:
    cid = "zh-form-address"
    opener = await say(services, cid, "你好")  # sets the language; no form yet
    asked = await say(services, cid, payload="/change_address")
    assert len(asked) == 1 and asked[0].text in zh(services, "utter_ask_order_number")
    session = await services.store.get(cid)
    assert session is not None and session.language == "zh" and session.active_form == "change_address"

    steps = [
        ("我现在查不到", "utter_invalid_order_number"),  # no order number: asked again, in Chinese
        ("我的订单号是ＫＫ２０４８７１", "utter_ask_street"),
        ("朝阳路88号", "utter_ask_postcode"),
        ("邮编：１０００２０。", "utter_ask_city"),
    ]
    sent = list(asked)
    for text, response in steps:
        replies = await say(services, cid, text)
        assert len(replies) == 1 and replies[0].text in zh(services, response), (text, replies)
        sent += replies
    done = await say(services, cid, "北京")
    slots = {"order_number": "KK-204871", "street": "朝阳路88号", "postcode": "100020", "city": "北京"}
    assert [r.text for r in done] == [next(iter(zh(services, "utter_address_change_recorded", **slots)))]
    sent += done
    assert_chinese(sent)

    session = await services.store.get(cid)
    assert session is not None and session.active_form is None and not session.handoff
    assert session.slots == slots
    bot_texts = [e.text for e in session.history if e.role == "bot"]
    assert bot_texts[len(opener):] == [r.text for r in sent]
    assert [e.language for e in session.history if e.role == "user"] == ["zh"] * 7


async def test_order_status_form_in_chinese(services: Services) -> None:
    cid = "zh-form-order"
    await say(services, cid, "你好")
    asked = await say(services, cid, payload="/order_status")
    assert len(asked) == 1 and asked[0].text in zh(services, "utter_ask_order_number")
    found = await say(services, cid, "订单号KK204871")
    # the status label is a translated response, the detail the order book's Chinese column:
    # no English sentence inside a Chinese reply
    assert len(found) == 1 and found[0].text.startswith("订单 KK-204871：已发货。")
    assert "PP88213402" in found[0].text and "Harrowgate Vale warehouse" not in found[0].text
    missing_cid = "zh-form-order-missing"
    await say(services, missing_cid, "你好")
    await say(services, missing_cid, payload="/order_status")
    not_found = await say(services, missing_cid, "KK999999号订单")
    expected = zh(services, "utter_order_not_found", order_number="KK-999999")
    assert [r.text for r in not_found] == list(expected)
    assert [b.title for b in not_found[0].buttons] == ["转人工客服"]
    assert_chinese(asked + not_found)
