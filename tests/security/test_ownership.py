"""Class 2: a conversation id is not a credential. Only the token the server issued reads or writes a
web conversation; channel conversations are keyed and unreachable through the web API."""

from __future__ import annotations

import json

import redis
from starlette.testclient import TestClient

from bot.config import Settings
from tests.clients import WidgetClient
from tests.security.conftest import post

PHONE = "+447700900123"


def test_the_first_message_issues_a_token_that_alone_reads_the_conversation(client: WidgetClient) -> None:
    r = post(client, "own-1", {"text": "my order KK-204871 is late"})
    token = r.json()["conversation_token"]
    assert token and len(token) >= 32
    assert client.get("/api/v1/conversations/own-1").status_code == 200  # the client sends it
    stranger = client.get("/api/v1/conversations/own-1", headers={"X-Conversation-Token": "guess"})
    never = client.get("/api/v1/conversations/never-was", headers={"X-Conversation-Token": "guess"})
    assert stranger.status_code == never.status_code == 404
    assert stranger.json()["error"] == never.json()["error"] == "unknown_conversation"
    assert client.get("/api/v1/conversations/own-1", headers={"X-Conversation-Token": ""}).status_code == 404


def test_nobody_else_can_write_into_a_conversation(client: WidgetClient) -> None:
    post(client, "own-2", {"text": "hello"})
    for headers in ({"X-Conversation-Token": "wrong"}, {}):
        sent = {"X-Conversation-Token": headers.get("X-Conversation-Token", "")}
        raw = client.post("/api/v1/conversations/own-2/messages", json={"payload": "/talk_to_human"},
                          headers=sent)
        assert raw.status_code == 404
    session = client.get("/api/v1/conversations/own-2").json()
    assert session["handoff"] is False and len(session["history"]) == 2


def test_the_server_can_choose_the_id_and_ids_in_use_cannot_be_claimed(client: WidgetClient) -> None:
    r = client.post("/api/v1/conversations")
    assert r.status_code == 201
    cid, token = r.json()["conversation_id"], r.json()["conversation_token"]
    empty = client.get(f"/api/v1/conversations/{cid}", headers={"X-Conversation-Token": token})
    assert empty.status_code == 200 and empty.json()["history"] == []
    again = client.post("/api/v1/conversations", json={"conversation_id": cid})
    assert again.status_code == 404


def test_websocket_needs_the_token_of_an_existing_conversation(client: WidgetClient) -> None:
    post(client, "own-ws", {"text": "hello"})
    from starlette.websockets import WebSocketDisconnect

    for headers in ({"X-Conversation-Token": "wrong"}, {}):
        try:
            with TestClient.websocket_connect(client, "/api/v1/conversations/own-ws/ws",
                                              headers=headers) as ws:  # not the client's own token
                ws.receive_json()
            raise AssertionError("a stranger's socket was accepted")
        except WebSocketDisconnect as exc:
            assert exc.code == 1008


def test_websocket_accepts_the_token_as_a_subprotocol(client: WidgetClient) -> None:
    token = post(client, "own-sub", {"text": "hello"}).json()["conversation_token"]
    with TestClient.websocket_connect(client, "/api/v1/conversations/own-sub/ws",
                                      subprotocols=["supportbot", f"token.{token}"]) as ws:
        assert ws.accepted_subprotocol == "supportbot"
        ws.send_text(json.dumps({"text": "thanks", "message_id": "s1"}))
        assert ws.receive_json()["type"] == "typing"


def test_rasa_conversations_are_keyed_and_unreachable_from_the_web_api(
        client: WidgetClient, app_settings: Settings) -> None:
    r = client.post("/webhooks/rest/webhook", json={"sender": PHONE, "message": "my phone is 07700 900123"})
    assert r.status_code == 200
    keys = [k.decode() for k in redis.Redis.from_url(app_settings.redis.dsn).scan_iter(
        f"{app_settings.sessions.key_prefix}:*", count=1000)]
    assert keys and not any("7700900123" in k or "rasa-" + PHONE in k for k in keys)
    cid = next(k.split("{")[1].split("}")[0] for k in keys if k.endswith(":session"))
    assert cid.startswith("rasa-") and PHONE.strip("+") not in cid
    assert client.get(f"/api/v1/conversations/{cid}").status_code == 404
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"payload": "/talk_to_human"})
    assert r.status_code == 404
    session = client.app.state.services.store
    import asyncio

    stored = asyncio.run(_get(session, cid, app_settings))
    assert stored is not None and stored.handoff is False


async def _get(store, cid: str, settings: Settings):  # type: ignore[no-untyped-def]
    """The session read through a client of this event loop (the app's lives in the test client's)."""
    from bot.sessions.store import RedisSessionStore, connect

    r = connect(settings.redis.dsn)
    try:
        return await RedisSessionStore(r, prefix=settings.sessions.key_prefix).get(cid)
    finally:
        await r.aclose()


def test_rasa_channels_accept_an_optional_shared_token(app_settings: Settings, demo_models: tuple) -> None:
    from pydantic import SecretStr

    from bot.web.app import create_app

    settings = app_settings.updated({"web.rasa_channel_token": SecretStr("rasa-shared-token")})
    with WidgetClient(create_app(settings, demo_models)) as c:
        body = {"sender": "u1", "message": "hello"}
        assert c.post("/webhooks/rest/webhook", json=body).status_code == 401
        assert c.post("/webhooks/rest/webhook?token=nope", json=body).status_code == 401
        assert c.post("/webhooks/rest/webhook?token=rasa-shared-token", json=body).status_code == 200
        bearer = {"Authorization": "Bearer rasa-shared-token"}
        ok = c.post("/webhooks/rest/webhook", json=body, headers=bearer)
        assert ok.status_code == 200
        assert c.post("/model/parse", json={"text": "hi"}).status_code == 401


def test_channel_ids_are_a_keyed_hash() -> None:
    from bot.channels.base import keyed_conversation_id

    a = keyed_conversation_id(b"k1", "whatsapp", "447700900123")
    assert a.startswith("whatsapp-") and "447700900123" not in a and len(a) <= 64
    assert a == keyed_conversation_id(b"k1", "whatsapp", "447700900123")
    assert a != keyed_conversation_id(b"k2", "whatsapp", "447700900123")
