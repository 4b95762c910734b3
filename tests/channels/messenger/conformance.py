"""Messenger in the conformance suite: Meta's webhook verification and signatures, `messaging` events,
the Send API with the page token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bot.channels.messenger import MessengerChannel
from bot.channels.meta import GraphApiError
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
SEND = f"{GRAPH}/me/messages"
PAGE_TOKEN = "EAAtest-page-access-token"
SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
VERIFY = "messenger-verify-token"
PSID = "6154829371029384"
SENT = {"recipient_id": PSID, "message_id": "m_SentAbC1dEf2GhI3jKl4MnO5pQr6StU7vWx8YzA9bCd0"}


def with_event(event: dict[str, Any]) -> bytes:
    update = recorded(HERE, "text_message")
    update["entry"][0]["messaging"] = [event]
    return json.dumps(update).encode()


def check_auth(request: httpx.Request) -> None:
    assert request.url.params["access_token"] == PAGE_TOKEN
    assert request.url.copy_with(query=None) == httpx.URL(SEND)


def sent(message: dict[str, Any]) -> dict[str, Any]:
    return {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": message}


DELIVERY = meta_signed(recorded(HERE, "text_message"), SECRET)
MALFORMED = [
    b"{not json", b"\xff\xfe", b"[]", b'{"entry": []}', b'{"object": "page", "entry": {}}',
    json.dumps({"object": "page", "entry": [{"id": "1", "messaging": "nope"}]}).encode(),
    with_event({"recipient": {"id": "1"}, "message": {"mid": "m_1", "text": "anon"}}),
    with_event({"sender": {}, "message": {"mid": "m_1", "text": "empty sender"}}),
    with_event({"sender": {"id": PSID}, "message": {"text": "no mid"}}),
    with_event({"sender": {"id": PSID}, "message": {"mid": "m_1", "attachments": "x"}}),
]
PLATFORM = Platform(
    name="messenger",
    make=lambda http: MessengerChannel(PAGE_TOKEN, SECRET, http, verify_token=VERIFY, graph_url=GRAPH),
    delivery=DELIVERY,
    expected={"channel": "messenger", "conversation_id": f"messenger-{PSID}",
              "message_id": "m_AbC1dEf2GhI3jKl4MnO5pQr6StU7vWx8YzA9bCd0EfG1hIj2KlM3nOp4QrS5tUv6",
              "text": "Waar is mijn bestelling? Ik heb €49,95 betaald", "payload": None, "sender_id": PSID,
              "metadata": {"recipient": {"id": PSID}}},
    address={"recipient": {"id": PSID}},
    unsigned=meta_unsigned(DELIVERY.body, SECRET),
    forged=meta_forged(DELIVERY.body, SECRET, DELIVERY.body,
                       DELIVERY.body.replace(b"Waar is mijn bestelling", b"Refund me 1000 EUR now!")),
    malformed=[meta_signed(body, SECRET) for body in MALFORMED],
    send_url=SEND,
    sent_text=[sent({"text": "Orders ship in 2 days & arrive <soon>."})],
    sent_buttons=[sent({"text": "Anything else?", "quick_replies": [
        {"content_type": "text", "title": "Talk to a person", "payload": "/talk_to_human"},
        {"content_type": "text", "title": "No thanks", "payload": "/deny"}]})],
    check_auth=check_auth,
    ok=lambda: httpx.Response(200, json=SENT),
    throttled=lambda: httpx.Response(429, headers={"Retry-After": "3"}, json={"error": {"code": 613}}),
    refused=lambda: httpx.Response(400, json={"error": {
        "message": "(#10) This message is sent outside of allowed window.", "type": "OAuthException",
        "code": 10, "error_subcode": 2018278}}),
    refused_error=GraphApiError,
    gives_up=GraphApiError,
    handshake=meta_handshake(VERIFY),
    handshake_refused=meta_handshake_refused(),
)
