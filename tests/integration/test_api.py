"""The web API over a real Redis and SQLite: conversation turns, bad input, dedupe, restarts."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.storage.db import TranscriptStore, make_engine
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration


@pytest.fixture
def client(app_settings: Settings, demo_models: tuple):
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        yield c


def say(client: TestClient, cid: str, text: str | None = None, **body: object) -> httpx.Response:
    if text is not None:
        body["text"] = text
    return client.post(f"/api/v1/conversations/{cid}/messages", json=body)


def history(client: TestClient, cid: str) -> list[dict]:
    return client.get(f"/api/v1/conversations/{cid}").json()["history"]


def test_health_readiness_docs_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and all(ready.json()["checks"].values())
    spec = client.get("/openapi.json").json()
    assert "/api/v1/conversations/{conversation_id}/messages" in spec["paths"]
    assert client.get("/docs").status_code == 200
    say(client, "m1", "hello")
    assert "supportbot_turns_total" in client.get("/metrics").text


def test_long_lived_objects_are_frozen_while_serving_and_freed_after(app_settings: Settings,
                                                                    demo_models: tuple) -> None:
    import gc

    assert gc.get_freeze_count() == 0
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        assert gc.get_freeze_count() > 100_000  # the models, tokenizers and index
        assert say(c, "gc-1", "hello").status_code == 200
    assert gc.get_freeze_count() == 0


def test_where_is_my_order_asks_for_the_order_number(client: TestClient) -> None:
    r = say(client, "o1", "where is my order?", message_id="a1")
    assert r.status_code == 200
    body = r.json()
    assert body["message_id"] == "a1" and "order number" in body["replies"][0]["text"]
    r = say(client, "o1", "KK-204871")
    assert "ParcelPost" in r.json()["replies"][0]["text"]


def test_buttons_come_back_and_payloads_are_understood(client: TestClient) -> None:
    r = say(client, "b1", payload="/talk_to_human")
    assert r.status_code == 200
    h = client.get("/api/v1/conversations/b1").json()
    assert h["handoff"] is True
    r = say(client, "b2", "are you a bot?")
    assert any(b["payload"] == "/talk_to_human" for b in r.json()["replies"][0]["buttons"])


def test_a_redelivered_message_id_gets_the_first_reply_and_no_second_turn(
        client: TestClient, app_settings: Settings) -> None:
    first = say(client, "d1", "where is my order", message_id="same")
    again = say(client, "d1", "where is my order", message_id="same")
    assert first.json()["conversation_token"] and again.json()["conversation_token"] is None  # shown once
    assert first.json()["replies"] == again.json()["replies"]
    assert len([e for e in history(client, "d1") if e["role"] == "user"]) == 1
    turns = TranscriptStore(make_engine(app_settings.resolved_database_url)).turns("d1")
    assert [t.message_id for t in turns] == ["same"]


@pytest.mark.parametrize(("request_kwargs", "status", "code"), [
    ({"json": {"text": ""}}, 422, "empty_message"),
    ({"json": {"text": "   \x00\x01  "}}, 422, "empty_message"),
    ({"json": {}}, 422, "empty_message"),
    ({"json": {"text": "x" * 2001}}, 422, "message_too_long"),
    ({"json": {"text": "\U0001f600" * 10_000}}, 413, "body_too_large"),
    ({"json": {"text": "hi", "admin": True}}, 422, "invalid_request"),
    ({"json": {"text": 5}}, 422, "invalid_request"),
    ({"json": {"text": "hi", "message_id": "../../etc"}}, 422, "invalid_request"),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "invalid_json"),
    ({"content": b"text=hi", "headers": {"content-type": "application/x-www-form-urlencoded"}},
     415, "unsupported_media_type"),
    ({"content": b"[1, 2]", "headers": {"content-type": "application/json"}}, 422, "invalid_request"),
])
def test_bad_input_gets_a_clear_error_and_loses_nothing(
        client: TestClient, request_kwargs: dict, status: int, code: str) -> None:
    say(client, "bad1", "where is my order")
    before = history(client, "bad1")
    r = client.post("/api/v1/conversations/bad1/messages", **request_kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code and "Traceback" not in r.text
    assert history(client, "bad1") == before
    follow = say(client, "bad1", "KK-318802")
    assert "packed" in follow.json()["replies"][0]["text"].lower()


def test_500_emoji_and_control_characters_get_a_sane_reply(client: TestClient) -> None:
    r = say(client, "e1", "\U0001f600" * 500)
    assert r.status_code == 200 and r.json()["replies"]
    r = say(client, "e2", "where\x07 is my\u202e order")
    assert r.status_code == 200 and "order number" in r.json()["replies"][0]["text"]
    assert history(client, "e2")[0]["text"] == "where is my order"


def test_invalid_and_unknown_conversations(client: TestClient) -> None:
    r = client.get("/api/v1/conversations/nobody-here")
    assert r.status_code == 404 and r.json()["error"] == "unknown_conversation"
    r = say(client, "bad id!", "hi")
    assert r.status_code in (404, 422)
    r = say(client, "x" * 65, "hi")
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


def test_websocket_turns_and_errors(client: TestClient) -> None:
    with client.websocket_connect("/api/v1/conversations/ws1/ws") as ws:
        ws.send_text(json.dumps({"text": "where is my order", "message_id": "w1"}))
        assert ws.receive_json() == {"type": "typing", "message_id": "w1"}
        replies = ws.receive_json()
        assert replies["type"] == "replies" and "order number" in replies["replies"][0]["text"]
        ws.send_text("{oops")
        assert ws.receive_json()["error"] == "invalid_json"
        ws.send_text(json.dumps({"text": "hi", "unknown": 1}))
        assert ws.receive_json()["error"] == "invalid_request"
        ws.send_text(json.dumps({"text": "KK-100245", "message_id": "w2"}))
        ws.receive_json()
        assert "delivered" in ws.receive_json()["replies"][0]["text"].lower()


def test_concurrent_messages_in_one_conversation_are_all_kept_in_order(
        app_settings: Settings, demo_models: tuple) -> None:
    app = create_app(app_settings, demo_models)

    async def run() -> list[str]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                texts = [f"message number {i}" for i in range(8)]
                created = await c.post("/api/v1/conversations", json={"conversation_id": "conc"})
                c.headers["X-Conversation-Token"] = created.json()["conversation_token"]
                results = await asyncio.gather(*[
                    c.post("/api/v1/conversations/conc/messages", json={"text": t, "message_id": f"m{i}"})
                    for i, t in enumerate(texts)])
                assert all(r.status_code == 200 for r in results)
                h = (await c.get("/api/v1/conversations/conc")).json()["history"]
                return [e["text"] for e in h if e["role"] == "user"]

    users = asyncio.run(run())
    assert sorted(users) == sorted(f"message number {i}" for i in range(8))
    session_turns = TranscriptStore(make_engine(app_settings.resolved_database_url)).turns("conc")
    assert [t.user_text for t in session_turns] == users  # transcript order == session order


def test_state_survives_an_app_restart(app_settings: Settings, demo_models: tuple) -> None:
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        say(c, "r1", "I need to change my delivery address")
        say(c, "r1", "KK-482913")
        tokens = c.tokens  # the widget keeps its token across a server restart
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        c.tokens.update(tokens)
        r = say(c, "r1", "14 Millbrook Lane")
        assert "postcode" in r.json()["replies"][0]["text"].lower()
        assert len(history(c, "r1")) == 6
