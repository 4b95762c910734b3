"""A platform message through the whole product: signed Telegram webhook -> pipeline -> Redis ->
outbound sendMessage, with a redelivery that must not send twice."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from bot.config import Settings
from bot.web.app import create_app

pytestmark = pytest.mark.integration
SECRET = "hub-test-secret_123"


def update(update_id: int, text: str) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1763900000, "text": text,
        "chat": {"id": 4242, "type": "private", "first_name": "Ana"},
        "from": {"id": 4242, "is_bot": False, "first_name": "Ana"}}}


def test_telegram_turns_through_the_hub(app_settings: Settings, demo_models: tuple) -> None:
    settings = app_settings.updated({"telegram.token": "123:abc", "telegram.secret_token": SECRET,
                                               "telegram.api_url": "https://telegram.test"})
    app = create_app(settings, demo_models)

    async def run() -> list[dict]:
        with respx.mock(assert_all_called=False) as mock:
            sent = mock.post("https://telegram.test/bot123:abc/sendMessage").mock(
                return_value=httpx.Response(200, json={"ok": True, "result": {}}))
            mock.route(host="127.0.0.1").pass_through()
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
                    bad = await c.post("/webhooks/telegram", json=update(1, "hi"),
                                       headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
                    assert bad.status_code in (401, 403)
                    for _ in range(2):  # Telegram redelivers when it thinks we timed out
                        r = await c.post("/webhooks/telegram", json=update(7001, "where is my order?"),
                                         headers=headers)
                        assert r.status_code == 200
                        await app.state.channels.drain()
                    await c.post("/webhooks/telegram", json=update(7002, "KK-204871"), headers=headers)
                    await app.state.channels.drain()
                    unknown = await c.post("/webhooks/nope", json={})
                    assert unknown.status_code == 404
                    await asyncio.sleep(0)
            return [json.loads(call.request.content) for call in sent.calls]

    bodies = asyncio.run(run())
    assert len(bodies) == 2, bodies  # one answer per inbound message, the redelivery sent nothing
    assert bodies[0]["chat_id"] == 4242 and "order number" in bodies[0]["text"]
    assert "ParcelPost" in bodies[1]["text"]


def test_meta_verification_handshake_and_signature_through_the_hub(app_settings: Settings,
                                                                   demo_models: tuple) -> None:
    from fastapi.testclient import TestClient

    settings = app_settings.updated({"whatsapp.token": "wa", "whatsapp.phone_number_id": "1055",
                                               "meta.app_secret": "app-secret", "meta.verify_token": "vt"})
    with TestClient(create_app(settings, demo_models)) as c:
        ok = c.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "vt",
                                                 "hub.challenge": "1158201444"})
        assert ok.status_code == 200 and ok.text == "1158201444"
        bad = c.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "no",
                                                  "hub.challenge": "1"})
        assert bad.status_code == 403
        unsigned = c.post("/webhooks/whatsapp", json={"object": "whatsapp_business_account", "entry": []})
        assert unsigned.status_code == 401 and unsigned.json()["error"]
        assert c.post("/webhooks/messenger", json={}).status_code == 404  # not configured: not enabled
