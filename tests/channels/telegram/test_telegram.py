"""Telegram channel, beyond the conformance suite: groups, button presses and their answers, media,
ignored updates, long or oversized replies, flood control's own wait, the pace, settings.

Fixtures follow the Bot API's Update / Message / CallbackQuery objects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from bot.channels import telegram
from bot.channels.base import UNSUPPORTED, Conversation
from bot.channels.telegram import TelegramChannel, from_settings
from bot.config import Settings
from bot.types import Button, Message, Reply
from tests.channels.telegram.conformance import API, SECRET, TOKEN

HERE = Path(__file__).parent
SEND = f"{API}/bot{TOKEN}/sendMessage"
ANSWER = f"{API}/bot{TOKEN}/answerCallbackQuery"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


@pytest.fixture
async def channel() -> AsyncIterator[TelegramChannel]:
    async with httpx.AsyncClient() as http:
        yield TelegramChannel(TOKEN, SECRET, http, api_url=API)


@pytest.fixture
async def client(channel: TelegramChannel, webhook_client) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return await webhook_client(channel, "/webhooks/telegram")


async def post(client: httpx.AsyncClient, body: Any, secret: str | None = SECRET) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post("/webhooks/telegram", content=content, headers=headers)


async def test_group_chat_is_one_conversation(client: httpx.AsyncClient) -> None:
    [msg] = (await post(client, fixture("group_text_message"))).json()
    assert msg["conversation_id"] == "telegram--1001234567890"
    assert msg["sender_id"] == "5550002"


async def test_button_press_becomes_payload_and_is_answered(client: httpx.AsyncClient,
                                                           channel: TelegramChannel) -> None:
    with respx.mock(assert_all_called=True) as mock:
        answered = mock.post(ANSWER).respond(200, json={"ok": True, "result": True})
        resp = await post(client, fixture("callback_query"))
        await channel.drain()
    [msg] = resp.json()
    assert msg["payload"] == "/talk_to_human"
    assert msg["text"] == ""
    assert msg["message_id"] == "731000102"
    assert msg["conversation_id"] == "telegram-5550001"
    assert msg["metadata"]["chat_id"] == 5550001
    assert json.loads(answered.calls.last.request.content) == {"callback_query_id": "4382bfdwdsb323b2d9"}


async def test_failed_callback_answer_does_not_fail_the_webhook(client: httpx.AsyncClient,
                                                               channel: TelegramChannel) -> None:
    with respx.mock() as mock:
        mock.post(ANSWER).respond(400, json={"ok": False, "error_code": 400,
                                             "description": "Bad Request: query is too old"})
        resp = await post(client, fixture("callback_query"))
        await channel.drain()
    assert resp.status_code == 200
    assert resp.json()[0]["payload"] == "/talk_to_human"


@pytest.mark.parametrize(("name", "kind"), [("photo_message", "photo"), ("voice_message", "voice"),
                                            ("sticker_message", "sticker"),
                                            ("document_message", "document"), ("video_message", "video")])
async def test_media_is_unsupported(client: httpx.AsyncClient, name: str, kind: str) -> None:
    [msg] = (await post(client, fixture(name))).json()
    assert msg["text"] == ""
    assert msg["payload"] is None
    assert msg["metadata"] == {"chat_id": 5550001, UNSUPPORTED: kind}


@pytest.mark.parametrize("name", ["edited_message", "my_chat_member", "group_member_joined"])
async def test_other_updates_are_ignored(client: httpx.AsyncClient, name: str) -> None:
    resp = await post(client, fixture(name))
    assert resp.status_code == 200
    assert resp.json() == []


async def test_messages_from_bots_are_ignored(client: httpx.AsyncClient) -> None:
    update = fixture("text_message")
    update["message"]["from"]["is_bot"] = True
    assert (await post(client, update)).json() == []


async def test_conversation_rebuilds_the_chat(client: httpx.AsyncClient, channel: TelegramChannel) -> None:
    msg = Message(**(await post(client, fixture("group_text_message"))).json()[0])
    conv = channel.conversation(msg)
    assert conv == Conversation("telegram--1001234567890", {"chat_id": -1001234567890})


async def test_long_payload_falls_back_to_text_buttons(channel: TelegramChannel, sleeps: list[float]) -> None:
    long = '/faq{"entry": "' + "x" * 60 + '"}'
    assert len(long.encode()) > 64
    reply = Reply(text="Did you mean:", buttons=[Button(title="Returns", payload=long),
                                                 Button(title="Other", payload="/other")])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json={"ok": True, "result": {}})
        await channel.send(Conversation("telegram-1", {"chat_id": 1}), [reply])
    body = json.loads(route.calls.last.request.content)
    assert "reply_markup" not in body
    assert body["text"] == "Did you mean:\n\n1. Returns\n2. Other"


async def test_long_reply_is_split_with_buttons_on_the_last_part(channel: TelegramChannel,
                                                                 sleeps: list[float]) -> None:
    text = ("word " * 1000 + "\n\n") * 2  # about 10,000 characters
    reply = Reply(text=text, buttons=[Button(title="Ok", payload="/affirm")])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json={"ok": True, "result": {}})
        await channel.send(Conversation("telegram-1", {"chat_id": 1}), [reply])
    bodies = [json.loads(c.request.content) for c in route.calls]
    assert len(bodies) == 3
    assert all(0 < len(b["text"]) <= 4096 for b in bodies)
    assert " ".join(b["text"] for b in bodies).split() == text.split()
    assert ["reply_markup" in b for b in bodies] == [False, False, True]


async def test_429_retry_after_in_body_only_is_honoured(channel: TelegramChannel,
                                                        sleeps: list[float]) -> None:
    flood = httpx.Response(429, json={"ok": False, "error_code": 429,
                                      "description": "Too Many Requests: retry after 7",
                                      "parameters": {"retry_after": 7}})
    with respx.mock() as mock:
        route = mock.post(SEND).mock(side_effect=[flood] * 4 + [httpx.Response(200, json={"ok": True})])
        await channel.send(Conversation("telegram-1", {"chat_id": 1}), [Reply(text="hi")])
    assert route.call_count == 5
    assert 7.0 in sleeps


async def test_flood_control_is_waited_out_eight_times_then_final(channel: TelegramChannel,
                                                                   sleeps: list[float]) -> None:
    flood = {"ok": False, "error_code": 429, "parameters": {"retry_after": 45}}
    with respx.mock() as mock:
        route = mock.post(SEND).respond(429, json=flood)
        with pytest.raises(httpx.HTTPStatusError):
            await channel.send(Conversation("telegram-1", {"chat_id": 1}), [Reply(text="hi")])
    assert route.call_count == telegram.FLOOD_ATTEMPTS == 8
    assert [s for s in sleeps if s > 1] == [30.0] * 7  # Telegram's wait, capped at 30 s each


async def test_rate_limit_spaces_messages(channel: TelegramChannel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        mock.post(SEND).respond(200, json={"ok": True, "result": {}})
        await channel.send(Conversation("telegram-1", {"chat_id": 1}), [Reply(text=str(i)) for i in range(3)])
    waits = [s for s in sleeps if s > 0]  # sleeps are faked, so each waits for its slot from t0
    interval = 1 / telegram.RATE_PER_S
    assert len(waits) == 2
    assert 0 < waits[0] <= interval < waits[1] + waits[0] and waits[1] <= 2 * interval


async def test_from_settings() -> None:
    async with httpx.AsyncClient() as http:
        assert from_settings(Settings(), http) is None
        assert from_settings(Settings(telegram={"token": TOKEN}), http) is None  # no secret: refused
        assert from_settings(Settings(telegram={"token": TOKEN, "secret_token": "has space"}), http) is None
        ch = from_settings(
            Settings(telegram={"token": TOKEN, "secret_token": SECRET, "api_url": API + "/"}), http
        )
        assert isinstance(ch, TelegramChannel)
        assert ch.base == f"{API}/bot{TOKEN}"
