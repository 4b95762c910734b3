"""WhatsApp Cloud API channel, receiving (beyond the conformance suite): the verification
handshake's corner cases, the signature over the bytes as sent, notification parsing (button presses,
media, statuses, other numbers, batches). Sending: test_whatsapp_send.py.

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

from bot.channels import meta
from bot.channels.base import UNSUPPORTED, ChannelError, InboundRequest
from bot.channels.whatsapp import WhatsAppChannel
from tests.channels.whatsapp.conformance import (
    GRAPH,
    PHONE_NUMBER_ID,
    SECRET,
    TOKEN,
    VERIFY,
    WA_ID,
)

HERE = Path(__file__).parent


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


async def test_handshake_without_a_token_is_403(client: httpx.AsyncClient) -> None:
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}  # a wrong one: conformance
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
        query = {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": ""}
        with pytest.raises(ChannelError) as refused:
            await channel.parse(InboundRequest(method="GET", path="/webhooks/whatsapp", query=query))
    assert (refused.value.status, refused.value.code) == (403, "bad_verify_token")


# inbound


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


def test_conversation_ids_fit() -> None:
    assert meta.conversation_id("whatsapp", WA_ID) == "whatsapp-31612345678"
    for raw in ("x" * 80, "+31 6 1234 5678"):
        cid = meta.conversation_id("whatsapp", raw)
        assert cid.startswith("whatsapp-") and len(cid) <= 64
        assert all(c.isalnum() or c in "_-" for c in cid)
