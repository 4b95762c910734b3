"""Each message's language is detected and kept in the session; a language the deployment does
not serve gets a polite answer in English and the offer of a person."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration


@pytest.fixture
def client(app_settings: Settings, demo_models: tuple):
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        yield c


def say(client: TestClient, cid: str, text: str | None = None, **body: object) -> dict:
    if text is not None:
        body["text"] = text
    r = client.post(f"/api/v1/conversations/{cid}/messages", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def state(client: TestClient, cid: str) -> dict:
    return client.get(f"/api/v1/conversations/{cid}").json()


def test_language_is_kept_per_message_and_per_conversation(client: TestClient) -> None:
    say(client, "l1", "我的订单 KK-204871 到哪了")
    assert state(client, "l1")["language"] == "zh"
    say(client, "l1", "ok")  # too short to tell: the conversation stays Chinese
    s = state(client, "l1")
    assert s["language"] == "zh"
    assert [e["language"] for e in s["history"] if e["role"] == "user"] == ["zh", "zh"]
    say(client, "l2", "hello, where is my order please?")
    assert state(client, "l2")["language"] == "en"


def test_unsupported_language_gets_english_and_a_person(client: TestClient) -> None:
    body = say(client, "l3", "Guten Tag, wo ist meine Bestellung? Sie sollte gestern ankommen.")
    reply = body["replies"][0]
    assert "English and Chinese" in reply["text"]
    assert [b["payload"] for b in reply["buttons"]] == ["/talk_to_human", "/deny"]
    assert state(client, "l3")["language"] == "de"
    say(client, "l3", payload="/talk_to_human")
    assert state(client, "l3")["handoff"] is True


def test_faq_answers_come_in_the_customers_language_when_translated(
        client: TestClient, demo_models: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    say(client, "l4", "你好，我想问一下关于账户的问题")  # the conversation is Chinese from here on
    translated = say(client, "l4", payload='/faq{"entry": "account-reset-password"}')["replies"]
    assert len(translated) == 1 and "密码" in translated[0]["text"]
    kb = demo_models[1]  # the demo translates every entry; a company's FAQ may not: untranslate one
    for index in (kb.default, kb.multilingual):
        monkeypatch.delitem(index.get("account-create").translations, "zh")
    english_only = say(client, "l4", payload='/faq{"entry": "account-create"}')["replies"]
    assert "只有英文" in english_only[0]["text"] and "Create account" in english_only[1]["text"]
    say(client, "l5", "hello, I have a question about my account please")
    assert len(say(client, "l5", payload='/faq{"entry": "account-create"}')["replies"]) == 1
