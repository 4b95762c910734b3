"""Class 1 and 8 of the hardening issue: any code point at any entry point gives a clear 4xx or an
answer, never a 5xx or a dropped socket, and never changes another customer's conversation."""

from __future__ import annotations

import asyncio
import json

import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.textsafety import InvalidText, clean, matching_form, safe_text
from tests.clients import WidgetClient
from tests.security.conftest import post

# Every code point, lone surrogates and noncharacters included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
POISON = ["ok \udc80", "\ud800", "a\udfff b", "x\ufffe", "\ufdd0 order", "hello \U0010ffff"]


@pytest.mark.parametrize("text", POISON)
def test_invalid_code_points_are_a_clear_422_over_rest(client: WidgetClient, text: str) -> None:
    r = post(client, "poison-rest", {"text": text})
    assert r.status_code == 422 and r.json()["error"] == "invalid_text"
    assert client.app.state.services.metrics.errors.labels("invalid_text")._value.get() >= 1


def test_an_invalid_payload_code_point_is_a_422_too(client: WidgetClient) -> None:
    r = post(client, "poison-payload", {"payload": "/greet\udc80"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_text"


def test_websocket_answers_an_error_frame_and_stays_open(client: WidgetClient) -> None:
    with client.websocket_connect("/api/v1/conversations/poison-ws/ws") as ws:
        ws.send_text(json.dumps({"text": "ok \udc80", "message_id": "p1"}))
        frame = ws.receive_json()
        assert frame == {**frame, "type": "error", "error": "invalid_text", "message_id": "p1"}
        ws.send_bytes(b"\x00\x01binary")
        assert ws.receive_json()["error"] == "binary_frame"
        ws.send_text(json.dumps({"text": "hello", "message_id": "p2"}))
        assert ws.receive_json()["type"] == "typing"
        assert ws.receive_json()["type"] == "replies"


def test_rasa_rest_and_parse_refuse_invalid_text(client: WidgetClient) -> None:
    raw = json.dumps({"sender": "s1", "message": "hi \udc80"}).encode()
    r = client.post("/webhooks/rest/webhook", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_text"
    r = client.post("/model/parse", content=json.dumps({"text": "\ud83d"}).encode(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_text"


async def test_socketio_answers_an_error_event(app_settings, demo_models) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from bot.web.app import create_app

    app = create_app(app_settings, demo_models)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    sio = socketio.AsyncClient()
    errors: asyncio.Queue = asyncio.Queue()
    uttered: asyncio.Queue = asyncio.Queue()
    sio.on("error", errors.put)
    sio.on("bot_uttered", uttered.put)
    try:
        await sio.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
        await sio.emit("session_request", {"session_id": "sio-poison"})
        await sio.emit("user_uttered", {"message": "hey \udc80", "session_id": "sio-poison"})
        assert (await asyncio.wait_for(errors.get(), 20))["error"] == "invalid_text"
        await sio.emit("user_uttered", {"message": "/no_such_intent", "session_id": "sio-poison"})
        assert (await asyncio.wait_for(errors.get(), 20))["error"] == "invalid_payload"
        await sio.emit("user_uttered", {"message": "hello", "session_id": "sio-poison"})
        assert (await asyncio.wait_for(uttered.get(), 30))["text"]
    finally:
        await sio.disconnect()
        server.should_exit = True
        await task


def test_text_that_normalisation_lengthens_is_judged_by_what_was_sent(client: WidgetClient) -> None:
    limit = client.app.state.services.settings.limits.max_message_chars
    text = "where is my order " + "x" * (limit - 28) + "\u0344" * 10  # NFC: each becomes 2 code points
    assert len(text) == limit
    assert post(client, "nfc-long", {"text": text}).status_code == 200
    assert post(client, "nfc-long", {"text": text + "y"}).json()["error"] == "message_too_long"


def test_format_and_bidi_characters_never_reach_the_history(client: WidgetClient) -> None:
    r = post(client, "cf-1", {"text": "where\u200b is\u00ad my\u2060 order\ufeff \u202egnp.exe"})
    assert r.status_code == 200
    stored = client.get("/api/v1/conversations/cf-1").json()["history"][0]["text"]
    assert stored == "where is my order gnp.exe"


def test_emoji_sequences_survive_cleaning() -> None:
    family, england = "👨\u200d👩\u200d👧", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert clean(f"hi {family} {england}") == f"hi {family} {england}"


@given(ANY_TEXT)
def test_the_gate_either_refuses_or_gives_clean_encodable_text(text: str) -> None:
    try:
        out = safe_text(text, 2000)
    except InvalidText as exc:
        assert exc.code in {"invalid_text", "message_too_long"}
        return
    out.encode("utf-8")  # never a lone surrogate
    assert all(ch == "\n" or ch == "\u200d" or ord(ch) >= 0x20 for ch in out)
    assert safe_text(out) == out  # idempotent
    matching_form(out).encode("utf-8")


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=3))
def test_any_code_points_through_rest_never_5xx_and_leave_others_alone(client: WidgetClient,
                                                                     texts: list[str]) -> None:
    if "bystander" not in client.tokens:
        assert post(client, "bystander", {"text": "where is my order?"}).status_code == 200
    before = client.get("/api/v1/conversations/bystander").json()
    for text in texts:
        r = post(client, "fuzz-one", {"text": text})
        assert r.status_code in (200, 422), r.text
        if r.status_code == 422:
            assert r.json()["error"] in {"invalid_text", "empty_message", "message_too_long"}
    assert client.get("/api/v1/conversations/bystander").json() == before


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=ANY_TEXT)
def test_any_code_points_over_websocket_get_a_frame_never_a_drop(client: WidgetClient, text: str) -> None:
    with client.websocket_connect("/api/v1/conversations/fuzz-ws/ws") as ws:
        ws.send_text(json.dumps({"text": text, "message_id": "f1"}))
        frame = ws.receive_json()
        if frame["type"] == "typing":
            frame = ws.receive_json()
        assert frame["type"] in ("replies", "error"), frame
        if frame["type"] == "error":
            assert frame["error"] in {"invalid_text", "empty_message", "message_too_long"}


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=ANY_TEXT)
def test_any_code_points_through_rasa_rest_and_a_webhook_never_5xx(client: WidgetClient, text: str) -> None:
    raw = json.dumps({"sender": "fuzz", "message": text}).encode()
    r = client.post("/webhooks/rest/webhook", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 422), r.text


def test_undecodable_body_is_invalid_json(client: WidgetClient) -> None:
    r = client.post("/api/v1/conversations/bad-utf8/messages", content=b'{"text": "\xff\xfe"}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"


def test_a_huge_request_header_is_refused(client: WidgetClient) -> None:
    r = client.get("/healthz", headers={"X-Filler": "a" * 1_000_000})
    assert r.status_code == 431 and r.json()["error"] == "headers_too_large"


def test_conversation_reads_are_never_cached(client: WidgetClient) -> None:
    r = post(client, "nocache", {"text": "hello"})
    assert r.headers["cache-control"] == "no-store"
    assert client.get("/api/v1/conversations/nocache").headers["cache-control"] == "no-store"


def test_webhooks_refuse_invalid_text(app_settings, demo_models) -> None:  # type: ignore[no-untyped-def]
    from bot.web.app import create_app

    settings = app_settings.updated({"telegram.token": "123:abc", "telegram.secret_token": "s"})
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"},
                                          "from": {"id": 5, "is_bot": False}, "text": "hi \udc80"}}
    with WidgetClient(create_app(settings, demo_models)) as c:
        r = c.post("/webhooks/telegram", content=json.dumps(update).encode(),
                   headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "s"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_text"


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=ANY_TEXT)
def test_any_code_points_through_the_console_never_5xx(client: WidgetClient, text: str) -> None:
    services = client.app.state.services
    if not client.cookies.get("sb_console"):
        services.agents.create("fuzz.admin", "Fuzz Admin", "correct horse battery", "admin")
        csrf = client.get("/console/api/session").json()["csrf"]
        login = client.post("/console/api/login", json={"username": "fuzz.admin",
                                                        "password": "correct horse battery"},
                            headers={"X-CSRF-Token": csrf})
        assert login.status_code == 200
        client.headers["X-CSRF-Token"] = login.json()["csrf"]
        post(client, "console-fuzz", {"text": "I want to talk to a person"})
    raw = json.dumps({"text": text}).encode()
    r = client.post("/console/api/conversations/console-fuzz/messages", content=raw,
                    headers={"Content-Type": "application/json"})
    assert r.status_code < 500, r.text
    if r.status_code == 422:
        assert r.json()["error"] in {"invalid_text", "empty_message", "invalid_request"}
