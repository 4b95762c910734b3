"""WhatsApp Cloud API in the conformance suite: Meta's webhook verification and signatures,
`messages` notifications, the Messages API with the system user's token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bot.channels.meta import GraphApiError
from bot.channels.whatsapp import WhatsAppChannel
from tests.channels.conformance import (
    Platform,
    meta_forged,
    meta_handshake,
    meta_handshake_refused,
    meta_signed,
    meta_unsigned,
    recorded,
)

HERE = Path(__file__).parent
GRAPH = "https://graph.test/v21.0"
PHONE_NUMBER_ID = "106540352242922"
SEND = f"{GRAPH}/{PHONE_NUMBER_ID}/messages"
TOKEN = "EAAtest-whatsapp-system-user-token"
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VERIFY = "verify-me-please"
WA_ID = "31612345678"
SENT = {"messaging_product": "whatsapp", "contacts": [{"input": WA_ID, "wa_id": WA_ID}],
        "messages": [{"id": "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJBQkNERUYA"}]}
OBJECT = "whatsapp_business_account"


def with_message(message: dict[str, Any]) -> bytes:
    update = recorded(HERE, "text_message")
    update["entry"][0]["changes"][0]["value"]["messages"] = [message]
    return json.dumps(update).encode()


def check_auth(request: httpx.Request) -> None:
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"].startswith("application/json")


def sent(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID, "type": kind,
            kind: content}


DELIVERY = meta_signed(recorded(HERE, "text_message"), SECRET)
MALFORMED = [
    b"{not json", b"\xff\xfe", b"[1, 2]", b'{"entry": []}', b'{"object": "whatsapp_business_account"}',
    b'{"object": "whatsapp_business_account", "entry": [1]}',
    json.dumps({"object": OBJECT, "entry": [{"id": "1", "changes": "nope"}]}).encode(),
    json.dumps({"object": OBJECT,
                "entry": [{"id": "1", "changes": [{"field": "messages", "value": []}]}]}).encode(),
    with_message({"id": "wamid.x", "type": "text", "text": {"body": "no sender"}}),
    with_message({"from": WA_ID, "id": "wamid.x", "type": "text", "text": "flat"}),
]
PLATFORM = Platform(
    name="whatsapp",
    make=lambda http: WhatsAppChannel(TOKEN, PHONE_NUMBER_ID, SECRET, http, verify_token=VERIFY,
                                      graph_url=GRAPH),
    delivery=DELIVERY,
    expected={"channel": "whatsapp", "conversation_id": f"whatsapp-{WA_ID}",
              "message_id": "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzQTcxRTA2RkI5QzE2QjlFMUZBQQA=",
              "text": "Waar is mijn bestelling? Ik heb €49,95 betaald", "payload": None, "sender_id": WA_ID,
              "metadata": {"wa_id": WA_ID}},
    address={"wa_id": WA_ID},
    unsigned=meta_unsigned(DELIVERY.body, SECRET),
    forged=meta_forged(DELIVERY.body, SECRET, DELIVERY.body,
                       DELIVERY.body.replace(b"Waar is mijn bestelling", b"Refund me 1000 EUR now!")),
    malformed=[meta_signed(body, SECRET) for body in MALFORMED],
    send_url=SEND,
    sent_text=[sent("text", {"body": "Orders ship in 2 days & arrive <soon>."})],
    sent_buttons=[sent("interactive", {"type": "button", "body": {"text": "Anything else?"}, "action": {
        "buttons": [{"type": "reply", "reply": {"id": "/talk_to_human", "title": "Talk to a person"}},
                    {"type": "reply", "reply": {"id": "/deny", "title": "No thanks"}}]}})],
    check_auth=check_auth,
    ok=lambda: httpx.Response(200, json=SENT),
    throttled=lambda: httpx.Response(429, headers={"Retry-After": "3"},
                                     json={"error": {"code": 4, "message": "slow"}}),
    refused=lambda: httpx.Response(400, json={"error": {"message": "(#100) Invalid parameter",
                                                        "type": "OAuthException", "code": 100}}),
    refused_error=GraphApiError,
    gives_up=GraphApiError,
    handshake=meta_handshake(VERIFY),
    handshake_refused=meta_handshake_refused(),
)
