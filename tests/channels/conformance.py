"""What the conformance suite (test_conformance.py) needs to know about one platform: a recorded,
signed delivery and the message it must become, the ways a delivery is refused, and what the
platform's API receives and answers. Each platform's folder holds its `conformance.py` with one
`PLATFORM`, built from the recorded payloads beside it (opsdroid-style)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from bot.channels.base import Channel, InboundRequest
from bot.types import Button, Reply

BASE = "https://bot.example.com"
TEXT = Reply(text="Orders ship in 2 days & arrive <soon>.")
BUTTONS = Reply(text="Anything else?", buttons=[Button(title="Talk to a person", payload="/talk_to_human"),
                                                Button(title="No thanks", payload="/deny")])


def recorded(folder: Path, name: str) -> Any:
    return json.loads((folder / f"{name}.json").read_text())


@dataclass(frozen=True)
class Probe:
    """One HTTP delivery, as the platform would make it."""

    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"
    query: str = ""

    def target(self, path: str) -> str:
        return path + (f"?{self.query}" if self.query else "")

    def request(self, path: str) -> InboundRequest:
        """What the web layer hands the channel for this delivery."""
        return InboundRequest(method=self.method, path=path, headers=dict(self.headers), body=self.body,
                              query=dict(parse_qsl(self.query, keep_blank_values=True)),
                              url=BASE + self.target(path), raw_query=self.query)

    async def send(self, client: httpx.AsyncClient, path: str) -> httpx.Response:
        return await client.request(self.method, self.target(path), content=self.body or None,
                                    headers=dict(self.headers))


def json_body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def form_body(request: httpx.Request) -> Any:
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


@dataclass(frozen=True)
class Platform:
    name: str
    make: Callable[[httpx.AsyncClient], Channel]
    delivery: Probe  # a recorded message, correctly signed
    expected: dict[str, Any]  # the Message it parses into (every field but received_at)
    address: dict[str, Any]  # what `conversation` rebuilds from it for `send`
    unsigned: list[Probe]  # the delivery without (all of) its signature: 401 bad_signature
    forged: list[tuple[Probe, int]]  # bad signatures, a tampered body...: the status, bad_signature
    malformed: list[Probe]  # correctly signed, but no usable body: 400 invalid_payload
    send_url: str
    sent_text: list[Any]  # the API bodies of TEXT
    sent_buttons: list[Any]  # the API bodies of BUTTONS
    check_auth: Callable[[httpx.Request], None]  # the API call carries the platform's credentials
    ok: Callable[[], httpx.Response]  # the API's answer to a send
    throttled: Callable[[], httpx.Response]  # a 429 with Retry-After: 3, as the platform words it
    refused: Callable[[], httpx.Response]  # a final 4xx of the API
    refused_error: type[Exception]  # what `send` raises on it
    gives_up: type[Exception] = httpx.HTTPStatusError  # what `send` raises when the 5xx never end
    decode: Callable[[httpx.Request], Any] = json_body
    redelivery: Mapping[str, str] = field(default_factory=dict)  # headers the platform adds to a retry
    ack: tuple[str, str] = ("application/json", '{"ok":true,"accepted":1}')  # content type, body
    handshake: tuple[Probe, str, str] | None = None  # a verification request, its answer, content type
    handshake_refused: tuple[Probe, int, str] | None = None  # one not the platform's: status, error

    @property
    def path(self) -> str:
        return f"/webhooks/{self.name}"


# -- Meta: WhatsApp and Messenger share its webhooks ----------------------------------------------

META_JSON = {"content-type": "application/json"}


def meta_sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def meta_signed(body: Any, secret: str, signature: str | None = None) -> Probe:
    """Meta sends non-ASCII characters escaped (\\uXXXX), as json.dumps does by default."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Probe(content, {**META_JSON, "X-Hub-Signature-256": signature or meta_sign(content, secret)})


def meta_unsigned(body: bytes, secret: str) -> list[Probe]:
    sha1 = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return [Probe(body, META_JSON), Probe(body, {**META_JSON, "X-Hub-Signature": sha1}),
            Probe(body, {**META_JSON, "X-Hub-Signature-256": ""})]


def meta_forged(body: bytes, secret: str, original: bytes, tampered: bytes) -> list[tuple[Probe, int]]:
    """Wrong signatures, another app's secret, a tampered body, and a bad body refused unread."""
    wrong = ["sha256=" + "0" * 64, "sha1=abc", "not-a-signature", "sha256=",
             meta_sign(body, "another-app-secret")]
    return [(meta_signed(body, secret, s), 403) for s in wrong] + [
        (meta_signed(tampered, secret, meta_sign(original, secret)), 403),
        (meta_signed(b"{not json", secret, meta_sign(original, secret)), 403)]


def meta_handshake(verify_token: str) -> tuple[Probe, str, str]:
    query = urlencode({"hub.mode": "subscribe", "hub.challenge": "1158201444",
                       "hub.verify_token": verify_token})
    return Probe(method="GET", query=query), "1158201444", "text/plain"


def meta_handshake_refused() -> tuple[Probe, int, str]:
    query = urlencode({"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "guess"})
    return Probe(method="GET", query=query), 403, "bad_verify_token"
