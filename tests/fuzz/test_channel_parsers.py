"""Hypothesis fuzzing of every inbound parser: each channel's `parse` (signature check included), the
Rasa REST and socket.io inputs and the Chatwoot webhook.

Two kinds of input per channel: random bytes and headers (which must fail the signature check or the
body check with the channel's 4xx error), and payloads shaped like the platform's (the recorded
fixtures in tests/channels/<name>/, with fields dropped, replaced by arbitrary JSON values and
nested) and correctly signed, so that the parsers themselves are exercised. The only allowed
outcomes are messages that the rest of the bot can use (a valid conversation id, a message id,
JSON-serialisable metadata, an address `send` can use) or the channel's 4xx error type.

Bounded: a fixed number of examples per test, no example database, derandomized, so that the run
takes seconds and is the same every time. `FUZZ_EXAMPLES=5000` runs a longer, random search.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels import meta, twilio
from bot.channels.base import ChannelError, Handshake, Headers, InboundRequest
from bot.channels.messenger import MessengerChannel
from bot.channels.slack import SlackChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.twilio import TwilioChannel
from bot.channels.whatsapp import WhatsAppChannel
from bot.types import Message
from bot.web.schemas import CONVERSATION_ID

pytestmark = pytest.mark.fuzz

FIXTURES = Path(__file__).resolve().parents[1] / "channels"
SECRET = "fuzz-secret_0123456789"
BASE = "https://bot.example.com"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or 120, deadline=None, derandomize=not EXAMPLES, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


def fixtures(channel: str) -> list[Any]:
    return [json.loads(p.read_text()) for p in sorted((FIXTURES / channel).glob("*.json"))]


def keys_of(value: Any, found: set[str] | None = None) -> set[str]:
    found = set() if found is None else found
    if isinstance(value, dict):
        for k, v in value.items():
            found.add(k)
            keys_of(v, found)
    elif isinstance(value, list):
        for v in value:
            keys_of(v, found)
    return found


# -- strategies ---------------------------------------------------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**18, max_value=10**400)
           | st.floats(allow_nan=True, allow_infinity=True) | st.floats(min_value=1e17, max_value=1e308)
           | st.text(max_size=40) | st.sampled_from(["", " ", "0", "-1", "1e999", "a" * 300, "{x}", "../x"]))


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    names = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(names, inner, max_size=5), max_leaves=12)


@st.composite
def mutated(draw: st.DrawFn, value: Any, keys: list[str], values: st.SearchStrategy[Any], rate: int,
            depth: int = 0) -> Any:
    """The value with about one part in `rate` dropped, replaced by arbitrary JSON (`values`), or
    joined by a field where it does not belong; the rest left alone (so that most examples get past
    the first checks and into the parser proper)."""
    if depth > 8 or draw(st.integers(0, rate)) == 0:
        return draw(values)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if draw(st.integers(0, rate)) == 0:
                continue  # a missing field
            out[k] = draw(mutated(v, keys, values, rate, depth + 1))
        if draw(st.integers(0, rate)) == 0:
            out[draw(st.sampled_from(keys))] = draw(values)
        return out
    if isinstance(value, list):
        items = [draw(mutated(v, keys, values, rate, depth + 1)) for v in value]
        if items and draw(st.integers(0, rate)) == 0:
            items = items * draw(st.integers(0, 3))  # none, or repeated
        return items
    return value


@functools.cache
def platform_json(channel: str) -> st.SearchStrategy[Any]:
    """A recorded payload of the channel, mutated (light mutations first: they shrink towards them)."""
    samples = fixtures(channel)
    keys = sorted(keys_of(samples))
    values = json_values(keys)
    return st.tuples(st.sampled_from(samples), st.sampled_from([80, 25, 8, 3])).flatmap(
        lambda sample_rate: mutated(sample_rate[0], keys, values, sample_rate[1]))


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity come out as the bare words, as a peer may send


def deeply_nested() -> st.SearchStrategy[bytes]:
    return st.integers(1, 20_000).map(lambda n: b"[" * n + b"]" * n) | st.integers(1, 5000).map(
        lambda n: b'{"a":' * n + b"1" + b"}" * n)


RANDOM_HEADERS = st.lists(st.tuples(
    st.sampled_from([b"content-type", b"x-telegram-bot-api-secret-token", b"x-hub-signature-256",
                     b"x-slack-signature", b"x-slack-request-timestamp", b"x-twilio-signature",
                     b"content-length", b"x-random"]),
    st.binary(max_size=80)), max_size=6)


# -- the harness --------------------------------------------------------------------------------

def make_request(body: bytes, headers: list[tuple[bytes, bytes]], method: str = "POST",
                 path: str = "/webhooks/x", query: bytes = b"") -> InboundRequest:
    """What the web layer (bot.web.inbound) hands a channel: header bytes decoded as latin-1, the
    last of a repeated query parameter."""
    raw_query = query.decode("latin-1")
    return InboundRequest(method=method, path=path, body=body, raw_query=raw_query,
                          headers=Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers),
                          query=dict(parse_qsl(raw_query, keep_blank_values=True)),
                          url=f"{BASE}{path}" + (f"?{raw_query}" if raw_query else ""), client="203.0.113.9")


def check_message(channel: Any, msg: Message) -> None:
    assert isinstance(msg, Message)
    assert msg.channel == channel.name
    assert re.fullmatch(CONVERSATION_ID, msg.conversation_id), msg.conversation_id
    assert isinstance(msg.message_id, str) and msg.message_id.strip(), msg.message_id
    assert isinstance(msg.text, str)
    assert msg.payload is None or isinstance(msg.payload, str)
    json.dumps(msg.model_dump(), allow_nan=False)  # sessions, transcripts and pub/sub store it as JSON
    channel.conversation(msg)  # the address `send` will need


def parse(channel: Any, request: InboundRequest) -> list[Message] | ChannelError | Handshake:
    """Run channel.parse on a fresh loop; only messages, ChannelError (4xx) or Handshake may come out."""

    async def go() -> list[Message] | ChannelError | Handshake:
        try:
            messages = await channel.parse(request)
        except ChannelError as exc:
            assert 400 <= exc.status < 500 and isinstance(exc.code, str)
            return exc
        except Handshake as hs:
            return hs
        finally:
            drain = getattr(channel, "drain", None)
            if drain is not None:
                await drain()
        assert isinstance(messages, list)
        for msg in messages:
            check_message(channel, msg)
        return messages

    return asyncio.run(go())


def http() -> httpx.AsyncClient:
    """Outbound calls (Telegram answers button presses while parsing) go nowhere."""
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": True})))


# -- Telegram -----------------------------------------------------------------------------------

def telegram() -> TelegramChannel:
    return TelegramChannel("123:fuzz", SECRET, http(), api_url="https://telegram.test")


@FUZZ
@given(body=st.binary(max_size=600), headers=RANDOM_HEADERS)
def test_telegram_random_bytes(body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    assert isinstance(parse(telegram(), make_request(body, headers)), ChannelError)


@FUZZ
@given(body=platform_json("telegram").map(encode) | deeply_nested() | st.binary(max_size=200))
def test_telegram_platform_shaped(body: bytes) -> None:
    parse(telegram(), make_request(body, [(b"x-telegram-bot-api-secret-token", SECRET.encode()),
                                          (b"content-type", b"application/json")]))


# -- WhatsApp and Messenger (Meta) ----------------------------------------------------------------

def whatsapp() -> WhatsAppChannel:
    return WhatsAppChannel("wa-token", "106540352242922", SECRET, http(), verify_token="verify-me")


def messenger() -> MessengerChannel:
    return MessengerChannel("page-token", SECRET, http(), verify_token="verify-me")


def meta_signed(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"x-hub-signature-256", meta.signature(body, SECRET).encode()),
            (b"content-type", b"application/json")]


@pytest.mark.parametrize("make", [whatsapp, messenger], ids=["whatsapp", "messenger"])
@FUZZ
@given(body=st.binary(max_size=600), headers=RANDOM_HEADERS)
def test_meta_random_bytes(make: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    assert isinstance(parse(make(), make_request(body, headers)), ChannelError)


@pytest.mark.parametrize(("make", "name"), [(whatsapp, "whatsapp"), (messenger, "messenger")],
                         ids=["whatsapp", "messenger"])
@FUZZ
@given(data=st.data())
def test_meta_platform_shaped(make: Any, name: str, data: st.DataObject) -> None:
    body = data.draw(platform_json(name).map(encode) | deeply_nested() | st.binary(max_size=200))
    parse(make(), make_request(body, meta_signed(body)))


@pytest.mark.parametrize("make", [whatsapp, messenger], ids=["whatsapp", "messenger"])
@FUZZ
@given(params=st.lists(st.tuples(st.sampled_from(["hub.mode", "hub.challenge", "hub.verify_token", "x"])
                                 | st.text(max_size=5), st.text(max_size=30)), max_size=5))
def test_meta_verification_handshake(make: Any, params: list[tuple[str, str]]) -> None:
    query = urlencode(params).encode()
    outcome = parse(make(), make_request(b"", [], method="GET", query=query))
    assert isinstance(outcome, ChannelError | Handshake)


# -- Slack ----------------------------------------------------------------------------------------

def slack() -> SlackChannel:
    return SlackChannel("xoxb-fuzz", SECRET, http(), bot_user_id="U0BOT")


def slack_signed(body: bytes, timestamp: str, form: bool) -> list[tuple[bytes, bytes]]:
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    ctype = b"application/x-www-form-urlencoded" if form else b"application/json"
    return [(b"x-slack-signature", signature.encode()), (b"x-slack-request-timestamp", timestamp.encode()),
            (b"content-type", ctype)]


@FUZZ
@given(body=st.binary(max_size=600), headers=RANDOM_HEADERS)
def test_slack_random_bytes(body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    assert isinstance(parse(slack(), make_request(body, headers)), ChannelError)


@FUZZ
@given(payload=platform_json("slack"), form=st.booleans(),
       raw=st.none() | deeply_nested() | st.binary(max_size=200),
       timestamp=st.none() | st.text(max_size=12) | st.integers(-10**30, 10**30).map(str)
       | st.integers(1, 400).map(lambda n: "1" + "0" * n))
def test_slack_platform_shaped(payload: Any, form: bool, raw: bytes | None, timestamp: str | None) -> None:
    if raw is not None:
        body = raw
    elif form:
        body = urlencode({"payload": json.dumps(payload)}).encode()
    else:
        body = encode(payload)
    ts = str(int(time.time())) if timestamp is None else timestamp
    headers = slack_signed(body, ts, form)
    try:
        ts.encode("latin-1")
    except UnicodeEncodeError:
        return  # not a header value an HTTP server could receive
    parse(slack(), make_request(body, headers))


# -- Twilio ---------------------------------------------------------------------------------------

def twilio_channel() -> TwilioChannel:
    return TwilioChannel("ACfuzz", SECRET, http(), public_base_url=BASE)


TWILIO_KEYS = sorted(keys_of(fixtures("twilio")))


@FUZZ
@given(body=st.binary(max_size=600), headers=RANDOM_HEADERS)
def test_twilio_random_bytes(body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    assert isinstance(parse(twilio_channel(), make_request(body, headers, path="/webhooks/twilio")),
                      ChannelError)


@FUZZ
@given(base=st.sampled_from(fixtures("twilio")),
       changes=st.dictionaries(st.sampled_from(TWILIO_KEYS) | st.text(max_size=6),
                               st.text(max_size=40) | st.sampled_from(["", "0", "-3", "x", "9" * 30]),
                               max_size=6),
       dropped=st.sets(st.sampled_from(TWILIO_KEYS), max_size=5))
def test_twilio_platform_shaped(base: dict[str, str], changes: dict[str, str], dropped: set[str]) -> None:
    form = {k: str(v) for k, v in base.items() if k not in dropped} | changes
    params = list(form.items())
    body = urlencode(params).encode()
    signature = twilio.signature(SECRET, f"{BASE}/webhooks/twilio", params)
    headers = [(b"x-twilio-signature", signature.encode()),
               (b"content-type", b"application/x-www-form-urlencoded")]
    parse(twilio_channel(), make_request(body, headers, path="/webhooks/twilio"))


# -- Rasa REST and socket.io ----------------------------------------------------------------------

class _Pipeline:
    def __init__(self) -> None:
        self.seen: list[Message] = []

    async def handle(self, msg: Message, **_: Any) -> list[Any]:
        self.seen.append(msg)
        return []


@functools.cache
def _rasa_app_once() -> tuple[Any, _Pipeline]:
    from types import SimpleNamespace

    from fastapi import FastAPI

    from bot.background import TaskSet
    from bot.config import Settings
    from bot.observability import Metrics
    from bot.web import errors, rasa_routes

    app = FastAPI()
    errors.install(app)
    app.include_router(rasa_routes.router)
    pipeline = _Pipeline()
    app.state.services = SimpleNamespace(settings=Settings(), pipeline=pipeline, metrics=Metrics())
    app.state.conversation_key = b"fuzz-key"
    app.state.tasks = TaskSet("fuzzed socket.io turn")
    return app, pipeline


def _rasa_app() -> tuple[Any, _Pipeline]:
    """The Rasa routes with the app's error handlers; the pipeline records what reached it."""
    app, pipeline = _rasa_app_once()
    pipeline.seen.clear()
    return app, pipeline


RASA_SHAPES = st.fixed_dictionaries(
    {"sender": SCALARS, "message": SCALARS},
    optional={"metadata": json_values(["message_id", "x"])
              | st.fixed_dictionaries({"message_id": SCALARS | json_values([])})})


@FUZZ
@given(body=RASA_SHAPES.map(encode) | deeply_nested() | st.binary(max_size=300),
       ctype=st.sampled_from([b"application/json", b"text/plain", b""]))
def test_rasa_rest_webhook(body: bytes, ctype: bytes) -> None:
    app, pipeline = _rasa_app()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            return await client.post("/webhooks/rest/webhook", content=body,
                                     headers={"content-type": ctype.decode()} if ctype else {})

    resp = asyncio.run(go())
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert isinstance(resp.json()["error"], str)
    else:
        assert len(pipeline.seen) == 1
    for msg in pipeline.seen:
        assert re.fullmatch(CONVERSATION_ID, msg.conversation_id)
        json.dumps(msg.model_dump(), allow_nan=False)


@FUZZ
@given(event=st.sampled_from(["session_request", "user_uttered"]),
       data=json_values(["session_id", "message", "customData"])
       | st.fixed_dictionaries({"message": SCALARS}, optional={"session_id": SCALARS}))
def test_rasa_socketio_events(event: str, data: Any) -> None:
    """The socket.io handlers answer anything with an event (never an exception, which would only
    be logged by python-socketio and leave the client waiting)."""
    from bot.web import rasa_socketio

    app, pipeline = _rasa_app()
    sio = rasa_socketio.socketio_server(app, [], 16_384)
    emitted: list[tuple[str, Any]] = []

    async def emit(name: str, payload: Any = None, **_: Any) -> None:
        emitted.append((name, payload))

    async def get_session(sid: str, namespace: str | None = None) -> dict[str, Any]:
        return {"session_id": "s1"}

    async def save_session(sid: str, session: Any, namespace: str | None = None) -> None:
        return None

    async def enter_room(sid: str, room: str, namespace: str | None = None) -> None:
        return None

    # Only the transport is stood in for: no client is connected in this test.
    sio.emit, sio.get_session, sio.save_session, sio.enter_room = emit, get_session, save_session, enter_room  # type: ignore[method-assign]
    sio.get_environ = lambda sid, namespace=None: {}  # type: ignore[method-assign]
    asyncio.run(sio.handlers["/"][event]("sid1", data))
    names = [name for name, _ in emitted]
    assert names or pipeline.seen, "the client got no answer"  # (this pipeline stub replies nothing)
    assert set(names) <= {"session_confirm", "error", "bot_uttered"}, emitted
    for msg in pipeline.seen:
        assert re.fullmatch(CONVERSATION_ID, msg.conversation_id)


# -- Chatwoot (Agent Bot webhook) ------------------------------------------------------------------

@functools.cache
def _chatwoot_app() -> tuple[Any, list[dict[str, Any]]]:
    from fastapi import FastAPI

    from bot.handoff import chatwoot
    from bot.web.webhooks import chatwoot_router

    bridge = chatwoot.ChatwootBridge(chatwoot.ChatwootConfig("https://chatwoot.test", "token"),
                                     _Pipeline(), None, None, None, http=http())  # type: ignore[arg-type]
    queued: list[dict[str, Any]] = []
    bridge._spawn = queued.append  # type: ignore[method-assign]  # the background work is not under test
    app = FastAPI()
    app.include_router(chatwoot_router(bridge))
    return app, queued


@FUZZ
@given(body=platform_json("chatwoot").map(encode) | deeply_nested() | st.binary(max_size=300))
def test_chatwoot_webhook(body: bytes) -> None:
    from bot.handoff import chatwoot

    app, queued = _chatwoot_app()
    queued.clear()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            return await client.post("/integrations/chatwoot/webhook", content=body,
                                     headers={"content-type": "application/json"})

    resp = asyncio.run(go())
    assert resp.status_code < 500, resp.text
    for event in queued:  # what handle_event will do with it in the background must not fail
        ids = chatwoot._ids(event)
        assert ids is not None and all(part.isdigit() for part in ids)
        if event["event"] == "message_created":
            msg = chatwoot.inbound_message(event, *ids)
            assert re.fullmatch(CONVERSATION_ID, msg.conversation_id)
