"""Telegram in the conformance suite: the secret-token header, Bot API Updates, sendMessage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bot.channels.telegram import TelegramChannel
from tests.channels.conformance import Platform, Probe, recorded

HERE = Path(__file__).parent
API = "https://telegram.test"
TOKEN = "123456:TEST-token"
SECRET = "s3cr3t_T0ken-for-tests"
JSON = {"content-type": "application/json"}


def signed(body: Any, secret: str = SECRET) -> Probe:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Probe(content, {**JSON, "X-Telegram-Bot-Api-Secret-Token": secret})


def check_auth(request: httpx.Request) -> None:
    assert request.url.path == f"/bot{TOKEN}/sendMessage"  # the token is the path


DELIVERY = signed(recorded(HERE, "text_message"))
PLATFORM = Platform(
    name="telegram",
    make=lambda http: TelegramChannel(TOKEN, SECRET, http, api_url=API),
    delivery=DELIVERY,
    expected={"channel": "telegram", "conversation_id": "telegram-5550001", "message_id": "731000101",
              "text": "Where is my order?", "payload": None, "sender_id": "5550001",
              "metadata": {"chat_id": 5550001}},
    address={"chat_id": 5550001},
    unsigned=[Probe(DELIVERY.body, JSON)],
    # The secret is not bound to the body: a wrong one is refused before the body is looked at.
    forged=[(signed(DELIVERY.body, "not-it"), 403), (signed(b"{not json", "not-it"), 403)],
    malformed=[signed(b) for b in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"message": {}}',
                                   json.dumps({"update_id": 1, "message": {"text": "no chat"}}).encode())],
    send_url=f"{API}/bot{TOKEN}/sendMessage",
    sent_text=[{"chat_id": 5550001, "text": "Orders ship in 2 days & arrive <soon>."}],
    sent_buttons=[{"chat_id": 5550001, "text": "Anything else?", "reply_markup": {"inline_keyboard": [
        [{"text": "Talk to a person", "callback_data": "/talk_to_human"}],
        [{"text": "No thanks", "callback_data": "/deny"}]]}}],
    check_auth=check_auth,
    ok=lambda: httpx.Response(200, json={"ok": True, "result": {"message_id": 50}}),
    throttled=lambda: httpx.Response(429, headers={"Retry-After": "3"}, json={
        "ok": False, "error_code": 429, "parameters": {"retry_after": 3}}),
    refused=lambda: httpx.Response(403, json={"ok": False, "error_code": 403,
                                              "description": "Forbidden: bot was blocked by the user"}),
    refused_error=httpx.HTTPStatusError,
)
