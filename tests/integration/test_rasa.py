"""Rasa compatibility: the REST channel, /model/parse and the socket.io protocol, in Rasa's shapes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import socketio
import uvicorn
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.web.app import create_app
from tests.clients import WidgetClient
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def client(app_settings: Settings, demo_models: tuple) -> Iterator[TestClient]:
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        yield c


def test_rest_channel_shapes(client: TestClient) -> None:
    r = client.post("/webhooks/rest/webhook", json={"sender": "user 42!", "message": "are you a bot?"})
    assert r.status_code == 200
    [reply] = r.json()
    assert reply["recipient_id"] == "user 42!" and "Kiki" in reply["text"]
    assert reply["buttons"] == [{"title": "Talk to a person", "payload": "/talk_to_human"}]
    r = client.post("/webhooks/rest/webhook", json={"sender": "u2", "message": "where is my order"})
    assert "order number" in r.json()[0]["text"]
    r = client.post("/webhooks/rest/webhook", json={"sender": "u2", "message": "KK-204871"})
    assert "ParcelPost" in r.json()[0]["text"]  # same sender, same conversation
    assert client.post("/webhooks/rest/webhook", json={"message": "hi"}).status_code == 422
    assert client.post("/webhooks/rest/webhook", json={"sender": "u3", "message": ""}).json()["error"] == \
        "empty_message"
    assert client.get("/webhooks/rest/").json() == {"status": "ok"}


def test_model_parse_shape(client: TestClient) -> None:
    body = client.post("/model/parse", json={"text": "has KK-123456 shipped yet?"}).json()
    assert body["text"] == "has KK-123456 shipped yet?"
    assert body["intent"]["name"] == body["intent_ranking"][0]["name"]
    assert 0 < body["intent"]["confidence"] <= 1
    assert [e["confidence"] for e in body["intent_ranking"]] == sorted(
        (e["confidence"] for e in body["intent_ranking"]), reverse=True)
    assert body["entities"] == [{"entity": "order_number", "value": "KK-123456", "start": 4, "end": 13,
                                 "confidence_entity": 1.0, "extractor": "RegexEntityExtractor"}]


def test_socketio_protocol(app_settings: Settings, demo_models: tuple) -> None:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app_settings, demo_models), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)

        async def talk() -> list[tuple[str, object]]:
            events: list[tuple[str, object]] = []
            got = asyncio.Event()
            sio = socketio.AsyncClient()
            sio.on("session_confirm", lambda d: events.append(("session_confirm", d)))

            def bot(d: object) -> None:
                events.append(("bot_uttered", d))
                got.set()

            sio.on("bot_uttered", bot)
            await sio.connect(f"http://127.0.0.1:{port}", socketio_path="/socket.io/",
                              transports=["websocket"])
            await sio.emit("session_request", {"session_id": "sess-1"})
            await sio.emit("user_uttered", {"message": "am I talking to a bot", "session_id": "sess-1"})
            await asyncio.wait_for(got.wait(), 20)
            await sio.disconnect()
            return events

        events = asyncio.run(talk())
    finally:
        server.should_exit = True
        thread.join(10)
    assert events[0] == ("session_confirm", "sess-1")
    name, data = events[1]
    assert name == "bot_uttered" and "Kiki" in data["text"]
    assert data["quick_replies"] == [{"content_type": "text", "title": "Talk to a person",
                                      "payload": "/talk_to_human"}]
