"""WhatsApp Cloud API channel: Meta's verification handshake and X-Hub-Signature-256, notification
parsing (messages, statuses, other numbers), the Messages API shapes (text, reply buttons, lists),
Graph error handling and retries.

Fixtures follow the Cloud API's `messages` webhook: text, interactive button_reply / list_reply,
template quick-reply `button`, media, reactions and `statuses`.
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
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.channels import meta
from bot.channels.base import UNSUPPORTED, ChannelError, Conversation
from bot.channels.meta import GraphApiError
from bot.channels.whatsapp import WhatsAppChannel, closing_part, from_settings
from bot.config import Settings
from bot.types import Button, Message, Reply

HERE = Path(__file__).parent
GRAPH = "https://graph.test/v21.0"
PHONE_NUMBER_ID = "106540352242922"
SEND = f"{GRAPH}/{PHONE_NUMBER_ID}/messages"
TOKEN = "EAAtest-whatsapp-system-user-token"
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VERIFY = "verify-me-please"
WA_ID = "31612345678"
YES_NO = [Button(title="Yes", payload="/affirm"), Button(title="No", payload="/deny")]
CUSTOMER = Conversation(f"whatsapp-{WA_ID}", {"wa_id": WA_ID})
SENT = {"messaging_product": "whatsapp", "contacts": [{"input": WA_ID, "wa_id": WA_ID}],
        "messages": [{"id": "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJBQkNERUYA"}]}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
async def channel() -> AsyncIterator[WhatsAppChannel]:
    async with httpx.AsyncClient() as http:
        yield WhatsAppChannel(TOKEN, PHONE_NUMBER_ID, SECRET, http, verify_token=VERIFY, graph_url=GRAPH)


@pytest.fixture
async def client(channel: WhatsAppChannel, webhook_client) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return await webhook_client(channel, "/webhooks/whatsapp")


async def post(client: httpx.AsyncClient, body: Any, *, signature: str | None = None,
               signed: bool = True) -> httpx.Response:
    # Meta sends non-ASCII characters escaped (\uXXXX), as json.dumps does by default
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if signed:
        headers["X-Hub-Signature-256"] = signature if signature is not None else sign(content)
    return await client.post("/webhooks/whatsapp", content=content, headers=headers)


def message_of(name: str) -> dict[str, Any]:
    return fixture(name)["entry"][0]["changes"][0]["value"]["messages"][0]


def with_message(message: dict[str, Any]) -> dict[str, Any]:
    update = fixture("text_message")
    update["entry"][0]["changes"][0]["value"]["messages"] = [message]
    return update


# verification


async def test_handshake_echoes_the_challenge(client: httpx.AsyncClient) -> None:
    resp = await client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY})
    assert resp.status_code == 200
    assert resp.text == "1158201444"
    assert resp.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "guess"},
    {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
])
async def test_handshake_with_a_wrong_token_is_403(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    resp = await client.get("/webhooks/whatsapp", params=params)
    assert resp.status_code == 403
    assert resp.json() == {"error": "bad_verify_token"}


@pytest.mark.parametrize("params", [
    {}, {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": VERIFY},
    {"hub.mode": "subscribe", "hub.verify_token": VERIFY}])
async def test_other_gets_are_400(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    resp = await client.get("/webhooks/whatsapp", params=params)
    assert resp.status_code == 400


async def test_handshake_without_a_configured_token_is_refused() -> None:
    async with httpx.AsyncClient() as http:
        channel = WhatsAppChannel(TOKEN, PHONE_NUMBER_ID, SECRET, http, graph_url=GRAPH)
        app = FastAPI()

        @app.get("/hook")
        async def hook(request: Request) -> Response:
            try:
                await channel.parse(request)
            except ChannelError as exc:
                return JSONResponse({"error": exc.code}, status_code=exc.status)
            return JSONResponse({})

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x") as c:
            resp = await c.get("/hook", params={"hub.mode": "subscribe", "hub.challenge": "1",
                                                "hub.verify_token": ""})
    assert resp.status_code == 403


# inbound


async def test_text_message(client: httpx.AsyncClient) -> None:
    resp = await post(client, fixture("text_message"))
    assert resp.status_code == 200
    [msg] = resp.json()
    assert msg["channel"] == "whatsapp"
    assert msg["conversation_id"] == "whatsapp-31612345678"
    assert msg["message_id"] == "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzQTcxRTA2RkI5QzE2QjlFMUZBQQA="
    assert msg["text"] == "Waar is mijn bestelling? Ik heb €49,95 betaald"
    assert msg["payload"] is None
    assert msg["sender_id"] == WA_ID
    assert msg["metadata"] == {"wa_id": WA_ID}


async def test_signature_is_over_the_bytes_as_sent(client: httpx.AsyncClient) -> None:
    """Meta signs the escaped-unicode body it sends: a signature over another encoding fails."""
    escaped = json.dumps(fixture("text_message")).encode()
    raw_utf8 = json.dumps(fixture("text_message"), ensure_ascii=False).encode()
    assert b"\\u20ac" in escaped and escaped != raw_utf8
    assert (await post(client, escaped, signature=sign(raw_utf8))).status_code == 403
    assert (await post(client, raw_utf8, signature=sign(raw_utf8))).status_code == 200


async def test_uppercase_hex_signature_is_accepted(client: httpx.AsyncClient) -> None:
    body = json.dumps(fixture("text_message")).encode()
    digest = sign(body).removeprefix("sha256=")
    assert (await post(client, body, signature="sha256=" + digest.upper())).status_code == 200


@pytest.mark.parametrize(("name", "payload", "text"), [
    ("button_reply", "/talk_to_human", "Talk to a person"),
    ("list_reply", '/faq{"entry": "returns"}', "Returns"),
    ("template_button", "/order_status", "Track my order"),
])
async def test_button_presses_carry_the_payload(client: httpx.AsyncClient, name: str, payload: str,
                                                text: str) -> None:
    [msg] = (await post(client, fixture(name))).json()
    assert msg["payload"] == payload
    assert msg["text"] == text  # the title: what the customer saw themselves choose
    assert msg["conversation_id"] == "whatsapp-31612345678"
    assert msg["message_id"].startswith("wamid.")
    assert UNSUPPORTED not in msg["metadata"]


@pytest.mark.parametrize(("kind", "content", "expected"), [
    ("image", {"id": "1", "mime_type": "image/jpeg"}, "image"),
    ("audio", {"id": "1", "mime_type": "audio/mpeg"}, "audio"),
    ("video", {"id": "1", "mime_type": "video/mp4"}, "video"),
    ("sticker", {"id": "1", "mime_type": "image/webp", "animated": False}, "sticker"),
    ("document", {"id": "1", "filename": "invoice.pdf", "mime_type": "application/pdf"}, "file"),
    ("location", {"latitude": 52.37, "longitude": 4.89}, "location"),
    ("contacts", [{"name": {"formatted_name": "Jan"}}], "contact"),
    ("unsupported", None, "unknown"),
])
async def test_media_is_unsupported(client: httpx.AsyncClient, kind: str, content: Any,
                                    expected: str) -> None:
    message = {"from": WA_ID, "id": f"wamid.{kind}", "timestamp": "1717172100", "type": kind}
    if content is not None:
        message[kind] = content
    else:
        message["errors"] = [{"code": 131051, "title": "Message type unknown"}]
    [msg] = (await post(client, with_message(message))).json()
    assert msg["text"] == ""
    assert msg["payload"] is None
    assert msg["message_id"] == f"wamid.{kind}"
    assert msg["metadata"] == {"wa_id": WA_ID, UNSUPPORTED: expected}


async def test_image_and_voice_fixtures(client: httpx.AsyncClient) -> None:
    [image] = (await post(client, fixture("image_message"))).json()
    [voice] = (await post(client, fixture("voice_message"))).json()
    assert image["metadata"][UNSUPPORTED] == "image"
    assert voice["metadata"][UNSUPPORTED] == "voice"


async def test_flow_replies_are_unsupported(client: httpx.AsyncClient) -> None:
    message = message_of("button_reply")
    message["interactive"] = {"type": "nfm_reply", "nfm_reply": {"name": "flow", "response_json": "{}"}}
    [msg] = (await post(client, with_message(message))).json()
    assert msg["metadata"][UNSUPPORTED] == "nfm_reply"
    assert msg["payload"] is None


@pytest.mark.parametrize("name", ["status_update", "reaction", "template_status"])
async def test_other_notifications_are_ignored(client: httpx.AsyncClient, name: str) -> None:
    resp = await post(client, fixture(name))
    assert resp.status_code == 200
    assert resp.json() == []


async def test_system_and_blank_messages_are_ignored(client: httpx.AsyncClient) -> None:
    system = {"from": WA_ID, "id": "wamid.sys", "timestamp": "1", "type": "system",
              "system": {"body": "changed number", "type": "user_changed_number"}}
    blank = {"from": WA_ID, "id": "wamid.blank", "timestamp": "1", "type": "text", "text": {"body": "  "}}
    for message in (system, blank):
        assert (await post(client, with_message(message))).json() == []


async def test_messages_to_another_number_are_left_alone(client: httpx.AsyncClient) -> None:
    update = fixture("text_message")
    update["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999999999"
    assert (await post(client, update)).json() == []


async def test_a_batch_yields_every_message(client: httpx.AsyncClient) -> None:
    update = fixture("text_message")
    value = update["entry"][0]["changes"][0]["value"]
    value["messages"].append(message_of("button_reply"))
    value["statuses"] = fixture("status_update")["entry"][0]["changes"][0]["value"]["statuses"]
    update["entry"].append(fixture("image_message")["entry"][0])
    messages = (await post(client, update)).json()
    assert [(m["text"], m["payload"], m["metadata"].get(UNSUPPORTED)) for m in messages] == [
        ("Waar is mijn bestelling? Ik heb €49,95 betaald", None, None),
        ("Talk to a person", "/talk_to_human", None),
        ("", None, "image")]


async def test_another_products_notification_is_ignored(client: httpx.AsyncClient) -> None:
    update = fixture("text_message")
    update["object"] = "page"
    assert (await post(client, update)).json() == []


async def test_a_redelivery_is_the_same_message(client: httpx.AsyncClient) -> None:
    [a] = (await post(client, fixture("button_reply"))).json()
    [b] = (await post(client, fixture("button_reply"))).json()
    assert Message(**a).dedupe_key == Message(**b).dedupe_key


async def test_missing_signature_is_401(client: httpx.AsyncClient) -> None:
    body = json.dumps(fixture("text_message")).encode()
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    for headers in ({}, {"X-Hub-Signature": sha1}, {"X-Hub-Signature-256": ""}):
        resp = await client.post("/webhooks/whatsapp", content=body,
                                 headers={"content-type": "application/json", **headers})
        assert resp.status_code == 401
        assert resp.json() == {"error": "bad_signature"}


@pytest.mark.parametrize("signature", ["sha256=" + "0" * 64, "sha1=abc", "not-a-signature", "sha256="])
async def test_bad_signature_is_403(client: httpx.AsyncClient, signature: str) -> None:
    resp = await post(client, fixture("text_message"), signature=signature)
    assert resp.status_code == 403
    assert resp.json() == {"error": "bad_signature"}


async def test_other_secret_or_tampered_body_is_403(client: httpx.AsyncClient) -> None:
    body = json.dumps(fixture("text_message")).encode()
    assert (await post(client, body, signature=sign(body, "another-app-secret"))).status_code == 403
    tampered = body.replace(b"Waar is mijn bestelling", b"Refund me 1000 EUR now!")
    assert (await post(client, tampered, signature=sign(body))).status_code == 403
    # refused before the body is looked at
    assert (await post(client, b"{not json", signature=sign(body))).status_code == 403


@pytest.mark.parametrize("body", [
    b"{not json", b"\xff\xfe", b"[1, 2]", b'{"entry": []}', b'{"object": "whatsapp_business_account"}',
    b'{"object": "whatsapp_business_account", "entry": [1]}',
    json.dumps({"object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": "nope"}]}).encode(),
    json.dumps({"object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": "messages", "value": []}]}]}).encode(),
    json.dumps(with_message({"id": "wamid.x", "type": "text", "text": {"body": "no sender"}})).encode(),
    json.dumps(with_message({"from": WA_ID, "id": "wamid.x", "type": "text", "text": "flat"})).encode(),
])
async def test_malformed_bodies_are_400(client: httpx.AsyncClient, body: bytes) -> None:
    resp = await post(client, body)
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_payload"}


async def test_conversation_rebuilds_the_address(client: httpx.AsyncClient, channel: WhatsAppChannel) -> None:
    msg = Message(**(await post(client, fixture("list_reply"))).json()[0])
    assert channel.conversation(msg) == CUSTOMER


def test_conversation_ids_fit() -> None:
    assert meta.conversation_id("whatsapp", WA_ID) == "whatsapp-31612345678"
    for raw in ("x" * 80, "+31 6 1234 5678"):
        cid = meta.conversation_id("whatsapp", raw)
        assert cid.startswith("whatsapp-") and len(cid) <= 64
        assert all(c.isalnum() or c in "_-" for c in cid)


# outbound


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(c.request.content) for c in route.calls]


async def test_send_text_with_bearer_token(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [Reply(text="Your order ships tomorrow.")])
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"].startswith("application/json")
    assert json.loads(request.content) == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                           "to": WA_ID, "type": "text",
                                           "text": {"body": "Your order ships tomorrow."}}


async def test_long_text_is_split_at_4096(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    text = ("word " * 900 + "\n\n") * 2  # about 9,000 characters
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [Reply(text=text)])
    sent = bodies(route)
    assert len(sent) == 3
    assert all(b["type"] == "text" and 0 < len(b["text"]["body"]) <= 4096 for b in sent)
    assert " ".join(b["text"]["body"] for b in sent).split() == text.split()


async def test_reply_buttons(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    reply = Reply(text="Anything else?", buttons=[
        Button(title="Talk to a person", payload="/talk_to_human"),
        Button(title="No thanks, that was everything", payload="/deny")])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    [body] = bodies(route)
    assert body["type"] == "interactive"
    assert body["to"] == WA_ID
    interactive = body["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "Anything else?"}
    buttons = interactive["action"]["buttons"]
    assert [b["type"] for b in buttons] == ["reply", "reply"]
    assert buttons[0]["reply"] == {"id": "/talk_to_human", "title": "Talk to a person"}
    assert buttons[1]["reply"]["id"] == "/deny"
    title = buttons[1]["reply"]["title"]
    assert len(title) <= 20 and title.endswith("…") and title.startswith("No thanks")


async def test_long_text_with_buttons_sends_the_text_first(channel: WhatsAppChannel,
                                                           sleeps: list[float]) -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 40 for i in range(6))  # ~3,000 characters
    reply = Reply(text=text, buttons=[*YES_NO])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    *texts, last = bodies(route)
    assert texts and all(b["type"] == "text" for b in texts)
    assert last["type"] == "interactive"
    closing = last["interactive"]["body"]["text"]
    assert 0 < len(closing) <= 1024
    assert closing.startswith("Paragraph 4:")  # the last paragraphs that fit, whole
    sent = [b["text"]["body"] for b in texts] + [closing]
    assert " ".join(sent).split() == text.split()  # nothing repeated, nothing lost


def test_closing_part_of_text_without_boundaries_is_cut_hard() -> None:
    yes = [Button(title="Yes", payload="/affirm")]
    assert closing_part(Reply(text="x" * 3000, buttons=yes), 1024) == (["x" * 1976], "x" * 1024)
    lines = "\n".join(f"line {i:03d} " + "y" * 40 for i in range(60))  # ~3,000 characters
    head, body = closing_part(Reply(text=lines, buttons=yes), 1024)
    assert len(body) <= 1024 and body.startswith("line ") and body.endswith("y" * 40)
    assert "\n".join([*head, body]) == lines


async def test_buttons_without_text_get_their_titles_as_body(channel: WhatsAppChannel,
                                                             sleeps: list[float]) -> None:
    reply = Reply(text="", buttons=[*YES_NO])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    [body] = bodies(route)
    assert body["interactive"]["body"] == {"text": "Yes · No"}


async def test_four_to_ten_buttons_are_a_list(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    titles = ["Shipping", "Returns", "Payment", "My account", "Opening hours of our shops"]
    buttons = [Button(title=t, payload=f"/topic{i}") for i, t in enumerate(titles)]
    reply = Reply(text="What is it about?", buttons=buttons)
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    [body] = bodies(route)
    interactive = body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["body"] == {"text": "What is it about?"}
    assert interactive["action"]["button"] == "Options"
    [section] = interactive["action"]["sections"]
    rows = section["rows"]
    assert [r["id"] for r in rows] == [f"/topic{i}" for i in range(5)]
    assert rows[0] == {"id": "/topic0", "title": "Shipping"}
    assert len(rows[4]["title"]) <= 24 and rows[4]["title"].endswith("…")
    assert rows[4]["description"] == "Opening hours of our shops"


async def test_duplicate_titles_after_cutting_fall_back_to_a_list(channel: WhatsAppChannel,
                                                                   sleeps: list[float]) -> None:
    reply = Reply(text="Which order?", buttons=[Button(title="Order from 12 March 2024", payload="/a"),
                                                Button(title="Order from 12 March 2025", payload="/b")])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    [body] = bodies(route)
    assert body["interactive"]["type"] == "list"
    assert [r["title"] for r in body["interactive"]["action"]["sections"][0]["rows"]] == [
        "Order from 12 March 2024", "Order from 12 March 2025"]


async def test_too_many_buttons_or_long_ids_are_numbered_text(channel: WhatsAppChannel,
                                                              sleeps: list[float]) -> None:
    many = Reply(text="Pick one", buttons=[Button(title=f"Option {i}", payload=f"/o{i}") for i in range(11)])
    long_id = Reply(text="Did you mean:", buttons=[Button(title="Returns", payload="/faq" + "x" * 300)])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [many, long_id])
    first, second = bodies(route)
    assert first["type"] == "text" and first["text"]["body"].startswith("Pick one\n\n1. Option 0\n")
    assert second == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID,
                      "type": "text", "text": {"body": "Did you mean:\n\n1. Returns"}}


async def test_retries_429_with_retry_after_and_5xx(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(SEND).mock(side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={"error": {"code": 4, "message": "slow"}}),
            httpx.Response(503, text="Service Unavailable"),
            httpx.Response(200, json=SENT),
        ])
        await channel.send(CUSTOMER, [Reply(text="hi")])
    assert route.call_count == 3
    assert 3.0 in sleeps


async def test_throttling_answered_as_400_is_retried(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    throttled = {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
                           "fbtrace_id": "AbCdEf"}}
    with respx.mock() as mock:
        route = mock.post(SEND).mock(side_effect=[httpx.Response(400, json=throttled),
                                                  httpx.Response(200, json=SENT)])
        await channel.send(CUSTOMER, [Reply(text="hi")])
    assert route.call_count == 2
    assert any(s >= 0.5 for s in sleeps)


async def test_other_graph_errors_are_final(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    invalid = {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}}
    with respx.mock() as mock:
        route = mock.post(SEND).respond(400, json=invalid)
        with pytest.raises(GraphApiError) as info:
            await channel.send(CUSTOMER, [Reply(text="hi")])
    assert route.call_count == 1
    assert (info.value.status, info.value.code) == (400, 100)
    assert TOKEN not in str(info.value)


async def test_rate_limit_is_20_per_second(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [Reply(text=str(i)) for i in range(3)])
    waits = [s for s in sleeps if s > 0]
    assert len(waits) == 2
    assert 0.02 < waits[0] <= 0.05 and 0.07 < waits[1] <= 0.1  # 20 per second, from t0


async def test_from_settings() -> None:
    async with httpx.AsyncClient() as http:
        assert from_settings(Settings(), http) is None
        number = PHONE_NUMBER_ID
        assert from_settings(Settings(whatsapp_token=TOKEN, whatsapp_phone_number_id=number), http) is None
        assert from_settings(Settings(whatsapp_token=TOKEN, meta_app_secret=SECRET), http) is None
        assert from_settings(Settings(meta_app_secret=SECRET, whatsapp_phone_number_id=number), http) is None
        ch = from_settings(Settings(whatsapp_token=TOKEN, meta_app_secret=SECRET, meta_verify_token=VERIFY,
                                    whatsapp_phone_number_id=number, meta_graph_url=GRAPH + "/"), http)
        assert isinstance(ch, WhatsAppChannel)
        assert ch.url == SEND
        assert ch.verify_token == VERIFY
