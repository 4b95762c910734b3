"""Slack in the conformance suite: v0 request signatures, the Events API, chat.postMessage."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx

from bot.channels.slack import SlackChannel
from tests.channels.conformance import Platform, Probe, recorded

HERE = Path(__file__).parent
API = "https://slack.test/api"
TOKEN = "xoxb-test-token"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_712_346_000  # the channel's clock: signed timestamps stay inside the replay window
TS = str(NOW)
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
THREAD = {"channel": "D0DMCHAN1", "thread_ts": "1712345678.000200"}
OK = {"ok": True, "channel": "D0DMCHAN1", "ts": "1712349999.000100", "message": {}}


def sign(body: bytes, timestamp: str = TS, secret: str = SECRET) -> str:
    base_string = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base_string, hashlib.sha256).hexdigest()


def signed(body: Any, signature: str | None = None, headers: dict[str, str] = JSON) -> Probe:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Probe(content, {**headers, "X-Slack-Request-Timestamp": TS,
                           "X-Slack-Signature": sign(content) if signature is None else signature})


def check_auth(request: httpx.Request) -> None:
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"].startswith("application/json")


def button(i: int, title: str, value: str) -> dict[str, Any]:
    return {"type": "button", "action_id": f"reply_button_{i}", "value": value,
            "text": {"type": "plain_text", "text": title, "emoji": True}}


def event(**fields: Any) -> bytes:
    return json.dumps({"type": "event_callback", "event_id": "Ev1", **fields}).encode()


DELIVERY = signed(recorded(HERE, "message_im"))
OTHER = sign(DELIVERY.body, secret="some-other-secret")
TAMPERED = DELIVERY.body.replace(b"Where is my order", b"Refund me 1000 EUR")
MALFORMED_FORMS = [b"payload=%7Bnot+json", b"nothing=here", b"payload=1&payload=2", b"payload=%5B%5D",
                   b"\xff=\xfe"]
PLATFORM = Platform(
    name="slack",
    make=lambda http: SlackChannel(TOKEN, SECRET, http, api_url=API, clock=lambda: NOW),
    delivery=DELIVERY,
    expected={"channel": "slack", "conversation_id": "slack-D0DMCHAN1-1712345678_000200",
              "message_id": "5a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b",  # client_msg_id
              "text": "Where is my order? It's #A&B-1042", "payload": None, "sender_id": "U0CUSTOMER",
              "metadata": {**THREAD, "ts": "1712345678.000200"}},
    address=THREAD,
    unsigned=[Probe(DELIVERY.body, JSON), Probe(DELIVERY.body, {**JSON, "X-Slack-Request-Timestamp": TS}),
              Probe(DELIVERY.body, {**JSON, "X-Slack-Signature": sign(DELIVERY.body)}),
              signed(DELIVERY.body, "")],
    forged=[(signed(DELIVERY.body, "v0=" + "0" * 64), 403), (signed(DELIVERY.body, "v1=abc"), 403),
            (signed(DELIVERY.body, "not-a-signature"), 403), (signed(DELIVERY.body, OTHER), 403),
            (signed(TAMPERED, sign(DELIVERY.body)), 403), (signed(b"{not json", OTHER), 403)],
    malformed=[signed(b) for b in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"event": {}}',
                                   b'{"type": "url_verification"}', event(event="nope"),
                                   event(event={"type": "message", "user": "U1", "text": "no channel"}))]
    + [signed(b, headers=FORM) for b in MALFORMED_FORMS],
    send_url=f"{API}/chat.postMessage",
    sent_text=[{**THREAD, "text": "Orders ship in 2 days &amp; arrive &lt;soon&gt;."}],  # escaped
    sent_buttons=[{**THREAD, "text": "Anything else?", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Anything else?"}},
        {"type": "actions", "elements": [button(0, "Talk to a person", "/talk_to_human"),
                                         button(1, "No thanks", "/deny")]}]}],
    check_auth=check_auth,
    ok=lambda: httpx.Response(200, json=OK),
    throttled=lambda: httpx.Response(429, headers={"Retry-After": "3"},
                                     json={"ok": False, "error": "ratelimited"}),
    refused=lambda: httpx.Response(404, text="Not Found"),
    refused_error=httpx.HTTPStatusError,
    redelivery={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    handshake=(signed(recorded(HERE, "url_verification")),
               '{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}', "application/json"),
    handshake_refused=(signed(recorded(HERE, "url_verification"), "v0=" + "0" * 64), 403, "bad_signature"),
)
