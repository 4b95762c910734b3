"""Twilio SMS in the conformance suite: X-Twilio-Signature over the public URL and the form, the
Messages resource, TwiML acknowledgements."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bot.channels.twilio import EMPTY_TWIML, TwilioChannel
from tests.channels.conformance import BASE, Platform, Probe, form_body, recorded

HERE = Path(__file__).parent
API = "https://twilio.test"
SID = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
TOKEN = "test-auth-token"
PATH = "/webhooks/twilio"
MESSAGES = f"{API}/2010-04-01/Accounts/{SID}/Messages.json"
FORM = {"content-type": "application/x-www-form-urlencoded; charset=UTF-8"}


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    """Written out independently of the channel's helper, from Twilio's description."""
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def signed(params: dict[str, str], *, token: str = TOKEN, body: bytes | None = None) -> Probe:
    content = urlencode(params).encode() if body is None else body
    return Probe(content, {**FORM, "X-Twilio-Signature": sign(BASE + PATH, params, token)})


def check_auth(request: httpx.Request) -> None:
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


SMS = recorded(HERE, "inbound_sms")
PLATFORM = Platform(
    name="twilio",
    make=lambda http: TwilioChannel(SID, TOKEN, http, api_url=API, from_number="+15005550001",
                                    public_base_url=BASE),
    delivery=signed(SMS),
    expected={"channel": "twilio", "conversation_id": "twilio-14155550100",
              "message_id": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
              "text": "Where is my order? It's #1234 & it's late",
              "payload": None, "sender_id": "+14155550100",
              "metadata": {"phone": "+14155550100", "to": "+15005550006"}},
    address={"phone": "+14155550100", "to": "+15005550006"},
    unsigned=[Probe(urlencode(SMS).encode(), FORM)],
    forged=[(signed(SMS, token="other"), 403),
            (signed(SMS, body=urlencode({**SMS, "Body": "refund me twice"}).encode()), 403),
            (Probe(b"{not a form", {**FORM, "X-Twilio-Signature": "c2lnbmF0dXJl"}), 403)],
    malformed=[Probe(b"Body=\xff\xfe", {**FORM, "X-Twilio-Signature": "c2lnbmF0dXJl"}),
               signed({k: v for k, v in SMS.items() if k != "From"})],
    send_url=MESSAGES,
    sent_text=[{"To": "+14155550100", "From": "+15005550001",
                "Body": "Orders ship in 2 days & arrive <soon>."}],
    sent_buttons=[{"To": "+14155550100", "From": "+15005550001",
                   "Body": "Anything else?\n\n1. Talk to a person\n2. No thanks"}],  # SMS has no buttons
    check_auth=check_auth,
    decode=form_body,
    ok=lambda: httpx.Response(201, json={"sid": "SM00000000000000000000000000000001"}),
    throttled=lambda: httpx.Response(429, headers={"Retry-After": "3"}, json={"code": 20429, "status": 429}),
    refused=lambda: httpx.Response(400, json={"code": 21211, "message": "Invalid 'To' Phone Number"}),
    refused_error=httpx.HTTPStatusError,
    ack=("text/xml", EMPTY_TWIML),
)
