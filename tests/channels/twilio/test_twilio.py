"""Twilio SMS channel, beyond the conformance suite: the signed URL (query, ports, proxies), MMS,
status callbacks, the sending number, 1600-character parts and the per-number pace.

Fixtures hold the form parameters of Twilio's messaging webhooks (inbound SMS, MMS, status
callback); the tests form-encode and sign them as Twilio does.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
import respx

from bot.channels.base import UNSUPPORTED, Conversation
from bot.channels.twilio import TwilioChannel, conversation_id, from_settings, signature, url_variants
from bot.config import Settings
from bot.types import Reply
from tests.channels.conformance import BASE as PUBLIC
from tests.channels.twilio.conformance import API, MESSAGES, PATH, SID, TOKEN, sign

HERE = Path(__file__).parent


def fixture(name: str) -> dict[str, str]:
    return json.loads((HERE / f"{name}.json").read_text())


def make_channel(http: httpx.AsyncClient, **kw: Any) -> TwilioChannel:
    kw.setdefault("public_base_url", PUBLIC)
    return TwilioChannel(SID, TOKEN, http, api_url=API, **kw)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def channel(http: httpx.AsyncClient) -> TwilioChannel:
    return make_channel(http, from_number="+15005550001")


@pytest.fixture
async def client(channel: TwilioChannel, webhook_client) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    # Behind a proxy: we are reached as http://internal:8000, Twilio called https://bot.example.com.
    return await webhook_client(channel, PATH, base_url="http://internal:8000")


async def post(client: httpx.AsyncClient, params: dict[str, str], *, query: str = "",
               sig: str | None = "auto", signed_url: str | None = None, body: bytes | None = None
               ) -> httpx.Response:
    path = PATH + (f"?{query}" if query else "")
    headers = {"content-type": "application/x-www-form-urlencoded; charset=UTF-8"}
    if sig == "auto":
        sig = sign(signed_url or PUBLIC + path, params)
    if sig is not None:
        headers["X-Twilio-Signature"] = sig
    content = body if body is not None else urlencode(params).encode()
    return await client.post(path, content=content, headers=headers)


def test_signature_matches_twilios_published_vectors() -> None:
    """The example from Twilio's own request-validator test suite (token 12345)."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212", "Caller": "+14158675309"}
    assert signature("12345", url, list(params.items())) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert signature("12345", url, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_url_variants_with_and_without_port() -> None:
    assert url_variants("https://a.example/x?q=1") == ["https://a.example/x?q=1", "https://a.example:443/x?q=1"]
    assert url_variants("http://a.example:8080/x") == ["http://a.example:8080/x", "http://a.example/x"]


async def test_query_string_is_part_of_the_signed_url(client: httpx.AsyncClient) -> None:
    resp = await post(client, fixture("inbound_sms"), query="tenant=acme&x=a%20b")
    assert resp.status_code == 200
    wrong = sign(PUBLIC + PATH, fixture("inbound_sms"))  # signed without the query
    assert (await post(client, fixture("inbound_sms"), query="tenant=acme", sig=wrong)).status_code == 403


async def test_signature_with_default_port_is_accepted(client: httpx.AsyncClient) -> None:
    resp = await post(client, fixture("inbound_sms"), signed_url="https://bot.example.com:443" + PATH)
    assert resp.status_code == 200


async def test_without_public_base_url_the_request_url_is_signed(http: httpx.AsyncClient,
                                                                 webhook_client) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(http, public_base_url=None)
    c = await webhook_client(channel, PATH, base_url="https://sms.example.org")
    ok = await post(c, fixture("inbound_sms"), signed_url="https://sms.example.org" + PATH)
    proxied = await post(c, fixture("inbound_sms"), signed_url=PUBLIC + PATH)
    assert ok.status_code == 200 and len(ok.json()) == 1
    assert proxied.status_code == 403


async def test_the_scheme_and_blank_parameters_are_signed(client: httpx.AsyncClient) -> None:
    params = fixture("inbound_sms")
    assert (await post(client, params, signed_url="http://bot.example.com" + PATH)).status_code == 403
    added = urlencode({**params, "Extra": ""}).encode()  # blank values are signed too
    assert (await post(client, params, body=added)).status_code == 403


async def test_mms_without_body_is_unsupported(client: httpx.AsyncClient) -> None:
    [msg] = (await post(client, fixture("inbound_mms"))).json()
    assert msg["text"] == ""
    assert msg["message_id"] == "MM2c0e8ae6ade43cb3c0ce4525424e4050"
    assert msg["metadata"][UNSUPPORTED] == "image"


async def test_mms_with_body_is_text(client: httpx.AsyncClient) -> None:
    [msg] = (await post(client, {**fixture("inbound_mms"), "Body": "see photo"})).json()
    assert msg["text"] == "see photo"
    assert UNSUPPORTED not in msg["metadata"]


@pytest.mark.parametrize("params", [fixture("status_callback"), {**fixture("inbound_sms"), "Body": ""}])
async def test_status_callbacks_and_empty_sms_are_ignored(client: httpx.AsyncClient,
                                                          params: dict[str, str]) -> None:
    resp = await post(client, params)
    assert resp.status_code == 200
    assert resp.json() == []


def test_conversation_ids() -> None:
    assert conversation_id("+447700900123") == "twilio-447700900123"
    hashed = conversation_id("whatsapp:+447700900123")
    assert re.fullmatch(r"twilio-[0-9a-f]{40}", hashed)
    assert conversation_id("12345") != conversation_id("+12345")  # a short code is not a phone number


async def test_send_from_the_inbound_number_without_a_configured_one(http: httpx.AsyncClient,
                                                                      sleeps: list[float]) -> None:
    channel = make_channel(http)
    with respx.mock() as mock:
        route = mock.post(MESSAGES).respond(201, json={})
        await channel.send(Conversation("twilio-1", {"phone": "+14155550100", "to": "+15005550006"}),
                           [Reply(text="hi")])
    assert parse_qs(route.calls.last.request.content.decode())["From"] == ["+15005550006"]


async def test_send_through_a_messaging_service(http: httpx.AsyncClient, sleeps: list[float]) -> None:
    channel = make_channel(http, from_number="MG0123456789abcdef0123456789abcdef")
    with respx.mock() as mock:
        route = mock.post(MESSAGES).respond(201, json={})
        await channel.send(Conversation("twilio-1", {"phone": "+14155550100"}), [Reply(text="hi")])
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["MessagingServiceSid"] == ["MG0123456789abcdef0123456789abcdef"] and "From" not in form


async def test_long_reply_is_split_at_1600_and_rate_limited(channel: TwilioChannel,
                                                           sleeps: list[float]) -> None:
    text = "word " * 700  # 3,500 characters
    with respx.mock() as mock:
        route = mock.post(MESSAGES).respond(201, json={})
        await channel.send(Conversation("twilio-1", {"phone": "+14155550100", "to": "+15005550006"}),
                           [Reply(text=text)])
    bodies = [parse_qs(c.request.content.decode())["Body"][0] for c in route.calls]
    assert len(bodies) == 3
    assert all(len(b) <= 1600 for b in bodies)
    assert " ".join(bodies).split() == text.split()
    waits = [s for s in sleeps if s > 0]  # one message per second from one number
    assert len(waits) == 2 and 0 < waits[0] <= 1.0 < waits[0] + waits[1] and waits[1] <= 2.0


async def test_from_settings(http: httpx.AsyncClient) -> None:
    assert from_settings(Settings(), http) is None
    assert from_settings(Settings(twilio={"account_sid": SID}), http) is None
    ch = from_settings(
        Settings(
            twilio={"account_sid": SID, "auth_token": TOKEN, "api_url": API, "from_number": "+15005550001"},
            web={"public_base_url": PUBLIC + "/"},
        ),
        http,
    )
    assert isinstance(ch, TwilioChannel)
    assert ch.messages_url == MESSAGES
    assert ch.public_base_url == PUBLIC
    assert ch.from_number == "+15005550001"
