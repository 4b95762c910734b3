"""A Redis restart mid-conversation: a clear 503 while it is down, nothing lost once it is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.sessions.embedded import EmbeddedRedis
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration


def test_conversation_continues_after_redis_restarts(app_settings: Settings, demo_models: tuple,
                                                     tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    settings = app_settings.updated({"redis.url": server.url, "redis.retry_s": 1.0})
    try:
        with WidgetClient(create_app(settings, demo_models)) as client:
            url = "/api/v1/conversations/restart1/messages"
            first = client.post(url, json={"text": "where is my order?", "message_id": "a"})
            assert "order number" in first.json()["replies"][0]["text"]

            server.stop()
            down = client.post(url, json={"text": "KK-204871", "message_id": "b"})
            assert down.status_code == 503
            assert down.json()["error"] == "session_store_unavailable"
            assert down.headers["retry-after"]
            assert client.get("/readyz").status_code == 503

            server.start()
            retry = client.post(url, json={"text": "KK-204871", "message_id": "b"})
            assert retry.status_code == 200, retry.text
            assert "ParcelPost" in retry.json()["replies"][0]["text"]  # the form state survived
            again = client.post(url, json={"text": "KK-204871", "message_id": "b"})
            assert again.json() == retry.json()
            history = client.get("/api/v1/conversations/restart1").json()["history"]
            assert [e["text"] for e in history if e["role"] == "user"] == ["where is my order?",
                                                                             "KK-204871"]
    finally:
        server.stop()
