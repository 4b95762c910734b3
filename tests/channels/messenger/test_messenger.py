"""Messenger channel, beyond the conformance suite: `messaging` event parsing (quick replies,
postbacks, chat plugin guests, attachments, echoes, receipts, batches), the signature over the bytes
as sent, the Send API's limits (quick replies, long replies), Graph throttling and the pace.

Fixtures follow the Messenger Platform's `messages`, `messaging_postbacks`, `message_echoes`,
`message_deliveries`, `message_reads` and `message_reactions` webhook events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from bot.channels.base import UNSUPPORTED, Conversation
from bot.channels.messenger import MessengerChannel, from_settings
from bot.channels.meta import GraphApiError
from bot.config import Settings
from bot.types import Button, Message, Reply
from tests.channels.messenger.conformance import GRAPH, PAGE_TOKEN, PSID, SECRET, SEND, SENT, VERIFY

HERE = Path(__file__).parent
PERSON = Conversation(f"messenger-{PSID}", {"recipient": {"id": PSID}})
YES_NO = [Button(title="Yes", payload="/affirm"), Button(title="No", payload="/deny")]


def fixture(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
async def channel() -> AsyncIterator[MessengerChannel]:
    async with httpx.AsyncClient() as http:
        yield MessengerChannel(PAGE_TOKEN, SECRET, http, verify_token=VERIFY, graph_url=GRAPH)


@pytest.fixture
async def client(channel: MessengerChannel, webhook_client) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return await webhook_client(channel, "/webhooks/messenger")


async def post(client: httpx.AsyncClient, body: Any, *, signature: str | None = None,
               signed: bool = True) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()  # \uXXXX-escaped, as Meta
    headers = {"content-type": "application/json"}
    if signed:
        headers["X-Hub-Signature-256"] = signature if signature is not None else sign(content)
    return await client.post("/webhooks/messenger", content=content, headers=headers)


def event_of(name: str) -> dict[str, Any]:
    return fixture(name)["entry"][0]["messaging"][0]


def with_event(event: dict[str, Any]) -> dict[str, Any]:
    update = fixture("text_message")
    update["entry"][0]["messaging"] = [event]
    return update


# verification


async def test_get_without_subscribe_mode_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.get("/webhooks/messenger", params={"hub.challenge": "1", "hub.verify_token": VERIFY})
    assert resp.status_code == 400


# inbound


async def test_quick_reply_carries_the_payload(client: httpx.AsyncClient) -> None:
    [msg] = (await post(client, fixture("quick_reply"))).json()
    assert msg["payload"] == "/talk_to_human"
    assert msg["text"] == "Talk to a person"
    assert msg["message_id"].startswith("m_Qr1")


async def test_postback_carries_the_payload(client: httpx.AsyncClient) -> None:
    [msg] = (await post(client, fixture("postback"))).json()
    assert msg["payload"] == "/greet"
    assert msg["text"] == "Get Started"
    assert msg["message_id"] == "m_Pb1aBc2DeF3gHi4JkL5mNo6PqR7sTu8VwX9yZa0BcD1eFg2HiJ3kLm4NoP5qRs6"
    assert msg["conversation_id"] == f"messenger-{PSID}"


async def test_postback_without_mid_gets_a_stable_id(client: httpx.AsyncClient) -> None:
    event = event_of("postback")
    del event["postback"]["mid"]
    [a] = (await post(client, with_event(event))).json()
    [b] = (await post(client, with_event(event))).json()  # a redelivery
    later = dict(event, timestamp=event["timestamp"] + 5000)  # the same button, pressed again
    [c] = (await post(client, with_event(later))).json()
    assert a["message_id"].startswith("postback-")
    assert a["message_id"] == b["message_id"] != c["message_id"]


async def test_other_apps_postbacks_are_ignored(client: httpx.AsyncClient) -> None:
    event = event_of("postback")
    del event["postback"]["payload"]
    assert (await post(client, with_event(event))).json() == []


async def test_chat_plugin_guest_is_addressed_by_user_ref(client: httpx.AsyncClient,
                                                          channel: MessengerChannel) -> None:
    event = event_of("postback")
    event["sender"] = {"user_ref": "guest.ref:7f3a"}
    [raw] = (await post(client, with_event(event))).json()
    msg = Message(**raw)
    assert msg.sender_id == "ref-guest.ref:7f3a"
    assert msg.conversation_id.startswith("messenger-") and len(msg.conversation_id) <= 64
    assert all(c.isalnum() or c in "_-" for c in msg.conversation_id)
    assert channel.conversation(msg).address == {"recipient": {"user_ref": "guest.ref:7f3a"}}


@pytest.mark.parametrize(("kind", "expected"), [("image", "image"), ("audio", "audio"), ("video", "video"),
                                                ("file", "file"), ("location", "location"),
                                                ("fallback", "link"), ("something_new", "unknown")])
async def test_attachments_are_unsupported(client: httpx.AsyncClient, kind: str, expected: str) -> None:
    event = event_of("image_attachment")
    event["message"]["attachments"][0]["type"] = kind
    [msg] = (await post(client, with_event(event))).json()
    assert msg["text"] == ""
    assert msg["payload"] is None
    assert msg["message_id"].startswith("m_Im1")
    assert msg["metadata"] == {"recipient": {"id": PSID}, UNSUPPORTED: expected}


async def test_sticker_is_unsupported(client: httpx.AsyncClient) -> None:
    [msg] = (await post(client, fixture("sticker"))).json()
    assert msg["metadata"][UNSUPPORTED] == "sticker"


async def test_a_shared_link_with_text_is_a_text_message(client: httpx.AsyncClient) -> None:
    event = event_of("image_attachment")
    event["message"]["text"] = "is this the right size? https://shop.example.com/p/1042"
    event["message"]["attachments"][0]["type"] = "fallback"
    [msg] = (await post(client, with_event(event))).json()
    assert msg["text"] == "is this the right size? https://shop.example.com/p/1042"
    assert UNSUPPORTED not in msg["metadata"]


@pytest.mark.parametrize("name", ["echo", "delivery", "read", "reaction", "standby"])
async def test_other_events_are_ignored(client: httpx.AsyncClient, name: str) -> None:
    resp = await post(client, fixture(name))
    assert resp.status_code == 200
    assert resp.json() == []


async def test_a_batch_yields_every_message(client: httpx.AsyncClient) -> None:
    update = fixture("text_message")
    update["entry"][0]["messaging"] += [event_of("delivery"), event_of("quick_reply")]
    update["entry"].append(fixture("postback")["entry"][0])
    messages = (await post(client, update)).json()
    assert [m["payload"] for m in messages] == [None, "/talk_to_human", "/greet"]


async def test_another_products_notification_is_ignored(client: httpx.AsyncClient) -> None:
    update = fixture("text_message")
    update["object"] = "instagram"
    assert (await post(client, update)).json() == []


async def test_signature_is_over_the_bytes_as_sent(client: httpx.AsyncClient) -> None:
    escaped = json.dumps(fixture("text_message")).encode()
    raw_utf8 = json.dumps(fixture("text_message"), ensure_ascii=False).encode()
    assert (await post(client, escaped, signature=sign(raw_utf8))).status_code == 403
    assert (await post(client, escaped)).status_code == 200


# outbound


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(c.request.content) for c in route.calls]


async def test_quick_replies(channel: MessengerChannel, sleeps: list[float]) -> None:
    reply = Reply(text="Anything else?", buttons=[
        Button(title="Talk to a person", payload="/talk_to_human"),
        Button(title="No thanks, that was everything", payload="/deny")])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(PERSON, [reply])
    [body] = bodies(route)
    assert body["message"]["text"] == "Anything else?"
    first, second = body["message"]["quick_replies"]
    assert first == {"content_type": "text", "title": "Talk to a person", "payload": "/talk_to_human"}
    assert second["payload"] == "/deny"
    assert len(second["title"]) <= 20 and second["title"].endswith("…")


async def test_long_reply_is_split_with_quick_replies_on_the_last_part(channel: MessengerChannel,
                                                                       sleeps: list[float]) -> None:
    text = ("word " * 500 + "\n\n") * 2  # about 5,000 characters
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(PERSON, [Reply(text=text, buttons=YES_NO)])
    sent = bodies(route)
    assert len(sent) == 3
    assert all(0 < len(b["message"]["text"]) <= 2000 for b in sent)
    assert " ".join(b["message"]["text"] for b in sent).split() == text.split()
    assert ["quick_replies" in b["message"] for b in sent] == [False, False, True]
    assert all(b["messaging_type"] == "RESPONSE" and b["recipient"] == {"id": PSID} for b in sent)


async def test_quick_replies_without_text(channel: MessengerChannel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(PERSON, [Reply(text="", buttons=YES_NO)])
    [body] = bodies(route)
    assert body["message"]["text"] == "Yes · No"
    assert len(body["message"]["quick_replies"]) == 2


async def test_too_many_or_oversized_buttons_are_numbered_text(channel: MessengerChannel,
                                                               sleeps: list[float]) -> None:
    thirteen = Reply(text="Pick", buttons=[Button(title=f"Option {i}", payload=f"/o{i}") for i in range(13)])
    fourteen = Reply(text="Pick", buttons=[Button(title=f"Option {i}", payload=f"/o{i}") for i in range(14)])
    huge = Reply(text="Did you mean:", buttons=[Button(title="Returns", payload="/faq" + "x" * 1000)])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(PERSON, [thirteen, fourteen, huge])
    first, second, third = bodies(route)
    assert len(first["message"]["quick_replies"]) == 13
    assert "quick_replies" not in second["message"]
    assert second["message"]["text"].startswith("Pick\n\n1. Option 0\n")
    assert third["message"] == {"text": "Did you mean:\n\n1. Returns"}


async def test_send_to_a_chat_plugin_guest(channel: MessengerChannel, sleeps: list[float]) -> None:
    guest = Conversation("messenger-x", {"recipient": {"user_ref": "guest.ref:7f3a"}})
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(guest, [Reply(text="hi")])
    assert bodies(route)[0]["recipient"] == {"user_ref": "guest.ref:7f3a"}


async def test_throttling_answered_as_400_is_retried(channel: MessengerChannel, sleeps: list[float]) -> None:
    throttled = {"error": {"message": "(#613) Calls to this api have exceeded the rate limit.",
                           "type": "OAuthException", "code": 613}}
    with respx.mock() as mock:
        route = mock.post(SEND).mock(side_effect=[httpx.Response(400, json=throttled),
                                                  httpx.Response(400, json=throttled),
                                                  httpx.Response(200, json=SENT)])
        await channel.send(PERSON, [Reply(text="hi")])
    assert route.call_count == 3


async def test_persistent_throttling_gives_up(channel: MessengerChannel, sleeps: list[float]) -> None:
    throttled = {"error": {"message": "(#613) rate limit", "code": 613}}
    with respx.mock() as mock:
        route = mock.post(SEND).respond(400, json=throttled)
        with pytest.raises(GraphApiError) as info:
            await channel.send(PERSON, [Reply(text="hi")])
    assert route.call_count == 3
    assert info.value.code == 613


async def test_other_errors_are_final_and_never_show_the_token(channel: MessengerChannel,
                                                               sleeps: list[float]) -> None:
    outside_window = {"error": {"message": "(#10) This message is sent outside of allowed window.",
                                "type": "OAuthException", "code": 10, "error_subcode": 2018278}}
    with respx.mock() as mock:
        route = mock.post(SEND).respond(400, json=outside_window)
        with pytest.raises(GraphApiError) as info:
            await channel.send(PERSON, [Reply(text="hi")])
    assert route.call_count == 1
    assert (info.value.status, info.value.code) == (400, 10)
    assert PAGE_TOKEN not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


async def test_rate_limit_is_20_per_second(channel: MessengerChannel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        mock.post(SEND).respond(200, json=SENT)
        await channel.send(PERSON, [Reply(text=str(i)) for i in range(3)])
    waits = [s for s in sleeps if s > 0]
    assert len(waits) == 2
    assert 0.02 < waits[0] <= 0.05 and 0.07 < waits[1] <= 0.1  # 20 per second, from t0


async def test_from_settings() -> None:
    async with httpx.AsyncClient() as http:
        assert from_settings(Settings(), http) is None
        assert from_settings(Settings(messenger={"page_token": PAGE_TOKEN}), http) is None  # cannot verify
        assert from_settings(Settings(meta={"app_secret": SECRET}), http) is None
        ch = from_settings(
            Settings(
                messenger={"page_token": PAGE_TOKEN},
                meta={"app_secret": SECRET, "verify_token": VERIFY, "graph_url": GRAPH + "/"},
            ),
            http,
        )
        assert isinstance(ch, MessengerChannel)
        assert ch.url == SEND
        assert ch.verify_token == VERIFY
