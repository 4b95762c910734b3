"""Hardening of the web app (issue 8, section 5), against a real Redis: rate limits per address and per
conversation on every inbound path, body limits, CORS for the widget's origins, security headers and
the CSP of our pages, and the admin API key."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import socketio
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr
from redis.asyncio import Redis
from starlette.websockets import WebSocketDisconnect

from bot.config import RateLimitSettings, Settings
from bot.observability import Metrics
from bot.sessions.counters import RedisWindowCounter
from bot.web.app import create_app
from bot.web.ratelimit import Limiter
from bot.web.security import widget_style_hashes
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration

STATIC = Path(__file__).resolve().parents[2] / "bot" / "web" / "static"
ADMIN_KEY = "admin-key-for-tests-0123456789"


def limited(settings: Settings, **limits: Any) -> Settings:
    return settings.updated({"rate_limit": RateLimitSettings(**limits)})


def say(client: TestClient | httpx.Client, cid: str, text: str = "hello", **kw: Any) -> httpx.Response:
    return client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text}, **kw)


def counter(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^{name}\{{{re.escape(want)}\}} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


# -- rate limits -----------------------------------------------------------------------------------

def test_per_address_limit_answers_429_with_retry_after(app_settings: Settings, demo_models: tuple) -> None:
    settings = limited(app_settings, per_ip_per_minute=3)
    with WidgetClient(create_app(settings, demo_models)) as client:
        for i in range(3):
            assert say(client, f"ip{i}").status_code == 200
        r = say(client, "ip9")
        assert r.status_code == 429
        body = r.json()
        assert body["error"] == "rate_limited" and body["limit"] == "ip"
        retry_after = int(r.headers["Retry-After"])
        assert 1 <= retry_after <= 60 and body["retry_after"] == retry_after
        # The Rasa REST channel and /model/parse count against the same address.
        r = client.post("/webhooks/rest/webhook", json={"sender": "x", "message": "hi"})
        assert r.status_code == 429
        assert client.get("/healthz").status_code == 200  # reads are not limited
        assert counter(client, "supportbot_rate_limited_total", limit="ip", channel="web") == 1
        assert counter(client, "supportbot_rate_limited_total", limit="ip", channel="rest") == 1


def test_per_conversation_limit_whatever_the_address(app_settings: Settings, demo_models: tuple) -> None:
    settings = limited(app_settings, per_conversation_per_minute=2)
    with WidgetClient(create_app(settings, demo_models)) as client:
        assert say(client, "conv-a").status_code == 200
        assert say(client, "conv-a", "where is my order").status_code == 200
        r = say(client, "conv-a", "KK-204871")
        assert r.status_code == 429 and r.json()["limit"] == "conversation"
        assert "Retry-After" in r.headers
        assert say(client, "conv-b").status_code == 200  # other conversations go on
        history = client.get("/api/v1/conversations/conv-a").json()["history"]
        assert [e["text"] for e in history if e["role"] == "user"] == ["hello", "where is my order"]
        # Rasa's REST channel: the conversation is the sender's.
        for _ in range(2):
            r = client.post("/webhooks/rest/webhook", json={"sender": "s1", "message": "hi"})
            assert r.status_code == 200
        r = client.post("/webhooks/rest/webhook", json={"sender": "s1", "message": "hi"})
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"


def test_websocket_over_the_limit_gets_an_error_frame_and_stays_open(
        app_settings: Settings, demo_models: tuple) -> None:
    settings = limited(app_settings, per_conversation_per_minute=1)
    with WidgetClient(create_app(settings, demo_models)) as client, \
            client.websocket_connect("/api/v1/conversations/ws-rl/ws") as ws:
        ws.send_text(json.dumps({"text": "hello", "message_id": "m1"}))
        assert ws.receive_json()["type"] == "typing"
        assert ws.receive_json()["type"] == "replies"
        ws.send_text(json.dumps({"text": "again", "message_id": "m2"}))
        frame = ws.receive_json()
        assert frame["type"] == "error" and frame["error"] == "rate_limited"
        assert frame["message_id"] == "m2" and frame["retry_after"] >= 1
        ws.send_text("{oops")  # the socket is still open and answering
        assert ws.receive_json()["error"] == "invalid_json"


@respx.mock
def test_channel_webhook_limits(app_settings: Settings, demo_models: tuple) -> None:
    """Platform webhooks: per calling address before parsing, per conversation after it."""
    respx.post(url__startswith="https://telegram.test/").mock(
        return_value=httpx.Response(200, json={"ok": True}))
    respx.route(host="testserver").pass_through()
    settings = limited(app_settings, per_conversation_per_minute=1, webhook_per_ip_per_minute=3)
    settings = settings.updated({"telegram.token": "1:tok", "telegram.secret_token": "hook-secret",
                                           "telegram.api_url": "https://telegram.test"})
    headers = {"X-Telegram-Bot-Api-Secret-Token": "hook-secret"}

    def update(n: int) -> dict:
        return {"update_id": n, "message": {"message_id": n, "chat": {"id": 77, "type": "private"},
                                            "from": {"id": 77, "is_bot": False}, "text": "hi"}}

    with WidgetClient(create_app(settings, demo_models)) as client:
        assert client.post("/webhooks/telegram", json=update(1), headers=headers).status_code == 200
        r = client.post("/webhooks/telegram", json=update(2), headers=headers)
        assert r.status_code == 429 and r.json()["limit"] == "conversation"  # Telegram redelivers it later
        assert int(r.headers["Retry-After"]) >= 1
        r = client.post("/webhooks/telegram", json=update(3), headers=headers)
        assert r.status_code == 200 or r.json()["limit"] == "conversation"
        r = client.post("/webhooks/telegram", json=update(4), headers=headers)
        assert r.status_code == 429 and r.json()["limit"] == "webhook"  # the address's 4th call
        # An unknown channel name is limited too, and never becomes a metric label.
        client.post("/webhooks/no-such-channel", json={})
        metrics = client.get("/metrics").text
        assert 'channel="no-such-channel"' not in metrics
        assert counter(client, "supportbot_rate_limited_total", limit="webhook", channel="other") == 1


def test_login_attempts_are_limited(app_settings: Settings, demo_models: tuple) -> None:
    settings = limited(app_settings, login_per_ip_per_minute=2)
    with WidgetClient(create_app(settings, demo_models)) as client:
        csrf = client.get("/console/api/session").json()["csrf"]
        codes = [client.post("/console/api/login", json={"username": "nobody", "password": "wrong-password"},
                             headers={"X-CSRF-Token": csrf}).status_code for _ in range(3)]
        assert codes == [401, 401, 429]


def test_socketio_over_the_limit_gets_an_error_event(app_settings: Settings, demo_models: tuple) -> None:
    settings = limited(app_settings, per_conversation_per_minute=1)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, demo_models), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        _wait_ready(port)

        async def talk() -> list[tuple[str, Any]]:
            events: list[tuple[str, Any]] = []
            done = asyncio.Event()
            sio = socketio.AsyncClient()
            sio.on("bot_uttered", lambda d: events.append(("bot_uttered", d)))

            def error(d: Any) -> None:
                events.append(("error", d))
                done.set()

            sio.on("error", error)
            await sio.connect(f"http://127.0.0.1:{port}", socketio_path="/socket.io/",
                              transports=["websocket"])
            await sio.emit("user_uttered", {"message": "hello", "session_id": "rl-1"})
            await sio.emit("user_uttered", {"message": "hello again", "session_id": "rl-1"})
            await asyncio.wait_for(done.wait(), 20)
            connected = sio.connected
            await sio.disconnect()
            events.append(("connected", connected))
            return events

        events = asyncio.run(talk())
    finally:
        server.should_exit = True
        thread.join(10)
    errors = [d for name, d in events if name == "error"]
    assert errors and errors[0]["error"] == "rate_limited" and errors[0]["retry_after"] >= 1
    assert ("connected", True) in events


async def test_limiter_fails_open_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    metrics = Metrics()
    limiter = Limiter(RedisWindowCounter(dead), "sbtest-dead", RateLimitSettings(per_ip_per_minute=1),
                      metrics)
    with caplog.at_level(logging.WARNING, logger="bot.web.ratelimit"):
        for _ in range(3):
            await limiter.check("ip", "203.0.113.1", "web")  # no RateLimited: customers get through
    await dead.aclose()
    assert metrics.degraded.labels("rate_limiter")._value.get() == 3
    assert len([r for r in caplog.records if "cannot reach Redis" in r.getMessage()]) == 1  # not per request


async def test_limit_is_shared_by_replicas_and_windows_expire(redis_url: str, key_prefix: str) -> None:
    a, b = Redis.from_url(redis_url), Redis.from_url(redis_url)
    settings = RateLimitSettings(per_ip_per_minute=3)
    one = Limiter(RedisWindowCounter(a), key_prefix, settings, Metrics(), window_s=1)
    two = Limiter(RedisWindowCounter(b), key_prefix, settings, Metrics(), window_s=1)
    await one.check("ip", "198.51.100.1", "web")
    await two.check("ip", "198.51.100.1", "web")
    await one.check("ip", "198.51.100.1", "web")
    with pytest.raises(Exception) as over:
        await two.check("ip", "198.51.100.1", "web")
    assert over.value.status == 429 and over.value.retry_after == 1  # type: ignore[attr-defined]
    ttl = await a.pttl(f"{key_prefix}:rl:ip:198.51.100.1")
    assert 0 < ttl <= 1000  # every counter expires
    await asyncio.sleep(1.1)
    await two.check("ip", "198.51.100.1", "web")  # a new window
    await a.aclose()
    await b.aclose()


def test_client_address_believes_forwarded_for_from_trusted_proxies_only() -> None:
    def scope(peer: str, *forwarded: str) -> dict:
        return {"client": (peer, 1234), "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}

    plain = Limiter(RedisWindowCounter(Redis()), "x", RateLimitSettings(), Metrics())
    # Without trusted proxies, X-Forwarded-For changes nothing.
    assert plain.client_address(scope("192.0.2.10", "203.0.113.5")) == "192.0.2.10"
    proxied = Limiter(RedisWindowCounter(Redis()), "x", RateLimitSettings(), Metrics(),
                      trusted_proxies=["10.0.0.0/8", "::1"])
    assert proxied.client_address(scope("10.1.2.3", "203.0.113.5")) == "203.0.113.5"
    # The client may write anything left of what our proxies appended: the right-most untrusted hop wins.
    assert proxied.client_address(scope("10.1.2.3", "1.1.1.1, 203.0.113.5, 10.9.9.9")) == "203.0.113.5"
    assert proxied.client_address(scope("10.1.2.3", "garbage, 203.0.113.5")) == "203.0.113.5"
    assert proxied.client_address(scope("10.1.2.3", "1.1.1.1", "203.0.113.6")) == "203.0.113.6"
    assert proxied.client_address(scope("192.0.2.10", "203.0.113.5")) == "192.0.2.10"  # peer not a proxy
    assert proxied.client_address(scope("10.1.2.3")) == "10.1.2.3"
    # IPv6 clients are counted per /64.
    assert proxied.client_address(scope("2001:db8::1")) == proxied.client_address(scope("2001:db8::ffff"))
    assert proxied.client_address(scope("::ffff:192.0.2.7")) == "192.0.2.7"


def test_forwarded_for_from_a_trusted_proxy_picks_the_bucket(app_settings: Settings,
                                                             demo_models: tuple) -> None:
    settings = limited(app_settings, per_ip_per_minute=1)
    settings = settings.updated({"web.trusted_proxies": ["10.0.0.0/8"]})
    app = create_app(settings, demo_models)

    async def run() -> list[int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("10.0.0.2", 5555))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                codes = []
                for n, ip in enumerate(("203.0.113.1", "203.0.113.2", "203.0.113.1")):
                    r = await c.post(f"/api/v1/conversations/xff{n}/messages", json={"text": "hi"},
                                     headers={"X-Forwarded-For": ip})
                    codes.append(r.status_code)
                return codes

    assert asyncio.run(run()) == [200, 200, 429]


# -- body limits -----------------------------------------------------------------------------------

def test_bodies_are_limited_everywhere(app_settings: Settings, demo_models: tuple) -> None:
    settings = app_settings.updated({"limits.max_body_bytes": 2048, "telegram.token": "1:tok",
                                               "telegram.secret_token": "hook-secret"})
    big = {"text": "x" * 4000}
    with WidgetClient(create_app(settings, demo_models)) as client:
        for path in ("/webhooks/telegram", "/console/api/login", "/webhooks/rest/webhook", "/model/parse",
                     "/api/v1/conversations/big/messages"):
            r = client.post(path, json=big)
            assert r.status_code == 413 and r.json()["error"] == "body_too_large", path

        def chunks():  # no content-length: the limit applies while the body streams in
            for _ in range(10):
                yield b"x" * 400

        r = client.post("/api/v1/conversations/big/messages", content=chunks(),
                        headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"] == "body_too_large"
        r = client.post("/webhooks/telegram", content=chunks(),
                        headers={"X-Telegram-Bot-Api-Secret-Token": "hook-secret"})
        assert r.status_code == 413
        sio = next(route.app.engineio_server for route in client.app.routes
                   if getattr(route, "path", "") == "/socket.io")
        assert sio.eio.max_http_buffer_size == 2048


# -- CORS and origins ------------------------------------------------------------------------------

def test_cors_only_for_widget_origins(app_settings: Settings, demo_models: tuple) -> None:
    settings = app_settings.updated({"web.widget_origins": ["https://shop.example.com"]})
    with WidgetClient(create_app(settings, demo_models)) as client:
        ok = client.options("/api/v1/conversations/c1/messages", headers={
            "Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://shop.example.com"
        bad = client.options("/api/v1/conversations/c1/messages", headers={
            "Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in bad.headers
        r = say(client, "cors1", headers={"Origin": "https://shop.example.com"})
        assert r.headers["access-control-allow-origin"] == "https://shop.example.com"
        assert "Retry-After" in r.headers["access-control-expose-headers"]
        r = say(client, "cors2", headers={"Origin": "https://evil.example.net"})
        assert "access-control-allow-origin" not in r.headers
        # The console is never cross-origin.
        r = client.get("/console/api/session", headers={"Origin": "https://shop.example.com"})
        assert "access-control-allow-origin" not in r.headers
        # WebSockets: browsers send Origin, and only ours and the widget's may connect.
        with client.websocket_connect("/api/v1/conversations/o1/ws",
                                      headers={"Origin": "https://shop.example.com"}) as ws:
            ws.send_text(json.dumps({"text": "hi"}))
            assert ws.receive_json()["type"] == "typing"
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(
                "/api/v1/conversations/o1/ws", headers={"Origin": "https://evil.example.net"}):
            pass
        assert closed.value.code == 1008
        # socket.io (polling handshake): same list.
        r = client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://evil.example.net"})
        assert r.status_code == 400
        r = client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://shop.example.com"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://shop.example.com"


def test_same_origin_only_by_default(client_default: TestClient) -> None:
    r = say(client_default, "so1", headers={"Origin": "https://shop.example.com"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = client_default.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://shop.example.com"})
    assert r.status_code == 400  # socket.io used to accept every origin when none was configured
    r = client_default.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": "http://testserver"})
    assert r.status_code == 200
    with pytest.raises(WebSocketDisconnect), client_default.websocket_connect(
            "/console/ws", headers={"Origin": "https://shop.example.com"}):
        pass


@pytest.fixture
def client_default(app_settings: Settings, demo_models: tuple):  # type: ignore[no-untyped-def]
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        yield c


# -- security headers ------------------------------------------------------------------------------

def csp(response: httpx.Response) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else ""
            for d in (p.strip() for p in response.headers["content-security-policy"].split(";"))}


def test_pages_get_a_strict_csp_and_security_headers(client_default: TestClient) -> None:
    for path in ("/", "/console/login"):
        r = client_default.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        policy = csp(r)
        assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
        assert "unsafe" not in r.headers["content-security-policy"]
        assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
        assert policy["connect-src"] == "'self' ws://testserver wss://testserver"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in r.headers  # plain HTTP here
    demo = csp(client_default.get("/"))
    assert demo["style-src"] == "'self' " + " ".join(widget_style_hashes())  # exactly the widget's stylesheet
    assert csp(client_default.get("/console/login"))["style-src"] == "'self'"
    assert client_default.get("/console/login").headers["referrer-policy"] == "no-referrer"
    assert client_default.get("/").headers["referrer-policy"] == "strict-origin-when-cross-origin"
    # The console's own pages redirect to login without a session; the redirect is decorated too.
    r = client_default.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["x-content-type-options"] == "nosniff"
    # JSON answers are never sniffed, and the console's are never cached.
    r = client_default.get("/console/api/session")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    assert "content-security-policy" not in client_default.get("/docs").headers  # Swagger UI's own


def test_every_answer_has_a_request_id(client_default: TestClient) -> None:
    assert client_default.get("/healthz", headers={"X-Request-ID": "edge-42.a:b"}).headers[
        "x-request-id"] == "edge-42.a:b"
    made = {client_default.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in made)
    r = say(client_default, "rid-conv", headers={"X-Request-ID": "trace-7"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-7"
    assert re.fullmatch(r"[0-9a-f]{32}", client_default.get("/nowhere").headers["x-request-id"])


def test_widget_script_stays_loadable_from_any_site(client_default: TestClient) -> None:
    r = client_default.get("/static/widget.js", headers={"Origin": "https://shop.example.com"})
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client_default.get("/static/console.js").headers["cross-origin-resource-policy"] == "same-origin"


def test_hsts_only_over_https(app_settings: Settings, demo_models: tuple) -> None:
    with WidgetClient(create_app(app_settings.updated({"console.cookie_secure": True}), demo_models)) as c:
        assert c.get("/").headers["strict-transport-security"].startswith("max-age=")


def test_pages_have_no_inline_script_or_style() -> None:
    """What the CSP would block: inline <script>, <style>, style= and on*= handlers."""
    for page in sorted(STATIC.glob("*.html")):
        html = page.read_text()
        assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html)), page.name
        assert "<style" not in html and not re.search(r"\sstyle=", html), page.name
        assert not re.search(r"\son[a-z]+=", html), page.name
        assert "javascript:" not in html, page.name


# -- admin API key ---------------------------------------------------------------------------------

def test_admin_api_is_off_without_a_key(client_default: TestClient) -> None:
    for headers in ({"Authorization": f"Bearer {ADMIN_KEY}"}, {"X-API-Key": ADMIN_KEY}, {}):
        r = client_default.get("/console/api/agents", headers=headers)
        assert r.status_code == 403 and r.json()["error"] == "admin_api_disabled", headers
    r = client_default.post("/console/api/agents", json={"username": "x", "display_name": "X",
                                                         "password": "long-enough-pw"},
                            headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 403


def test_admin_api_key(app_settings: Settings, demo_models: tuple) -> None:
    settings = app_settings.updated({"console.admin_api_key": SecretStr(ADMIN_KEY)})
    with WidgetClient(create_app(settings, demo_models)) as client:
        r = client.get("/console/api/agents")
        assert r.status_code == 401 and r.json()["error"] == "login_required"
        r = client.get("/console/api/agents", headers={"Authorization": "Bearer wrong-key"})
        assert r.status_code == 401 and r.json()["error"] == "bad_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
        r = client.post("/console/api/agents", headers={"X-API-Key": ADMIN_KEY},  # no cookie, no CSRF
                        json={"username": "api.made", "display_name": "API Made",
                              "password": "long-enough-pw"})
        assert r.status_code == 201, r.text
        r = client.get("/console/api/agents", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 200 and [a["username"] for a in r.json()] == ["api.made"]
        # A plain agent's session is no admin credential, key or not.
        csrf = client.get("/console/api/session").json()["csrf"]
        client.app.state.services.agents.create("plain", "Plain Agent", "long-enough-pw", "agent")
        login = client.post("/console/api/login", json={"username": "plain", "password": "long-enough-pw"},
                            headers={"X-CSRF-Token": csrf})
        assert login.status_code == 200
        assert client.get("/console/api/agents").status_code == 403
    spec = create_app(settings, demo_models).openapi()
    assert "Bearer" in spec["paths"]["/console/api/agents"]["post"]["description"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not become ready")
