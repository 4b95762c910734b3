"""No secret in the logs: a served app with every kind of secret configured, driven through good and
failing requests (bad signatures, wrong keys, platform APIs that fail, a dead Redis, a dead database),
logging through the production handler (`configure_logging`), and not one secret in what it wrote."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx
import uvicorn
from pydantic import SecretStr

from bot.channels import meta
from bot.config import GenerationSettings, Settings
from bot.observability import configure_logging, secret_values
from bot.web.app import create_app

pytestmark = pytest.mark.integration

SECRETS = {
    "admin_api_key": "adm1n-K3Y-0f-the-test-suite",
    "secret_key": "c00kie-s1gning-K3Y-0f-the-test-suite",
    "telegram_token": "123456789:AAH-tel3gram-b0t-T0KEN",
    "telegram_secret_token": "tel3gram-webh00k-SECRET",
    "meta_app_secret": "m3ta-app-SECRET-0123456789",
    "meta_verify_token": "m3ta-v3rify-T0KEN",
    "whatsapp_token": "EAAw-whatsapp-acc3ss-T0KEN",
    "messenger_page_token": "EAAm-messenger-pag3-T0KEN",
    "slack_bot_token": "xoxb-sl4ck-b0t-T0KEN",
    "slack_signing_secret": "sl4ck-s1gning-SECRET-0123",
    "twilio_auth_token": "tw1lio-auth-T0KEN-0123456",
    "chatwoot_api_token": "chatw00t-api-T0KEN-0123",
    "chatwoot_webhook_token": "chatw00t-webh00k-T0KEN",
}
# Where each secret lives in Settings.
FIELDS = {"admin_api_key": "console.admin_api_key", "secret_key": "console.secret_key",
          "telegram_token": "telegram.token", "telegram_secret_token": "telegram.secret_token",
          "meta_app_secret": "meta.app_secret", "meta_verify_token": "meta.verify_token",
          "whatsapp_token": "whatsapp.token", "messenger_page_token": "messenger.page_token",
          "slack_bot_token": "slack.bot_token", "slack_signing_secret": "slack.signing_secret",
          "twilio_auth_token": "twilio.auth_token", "chatwoot_api_token": "chatwoot.api_token",
          "chatwoot_webhook_token": "chatwoot.webhook_token"}
OPENAI_KEY = "sk-0pen4i-compatible-API-key-0123"
REDIS_PASSWORD = "r3dis-pa55word-in-URL"
DB_PASSWORD = "p0stgres-pa55word-in-URL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The root logger as `supportbot serve` sets it up, writing into a buffer; restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buffer = io.StringIO()
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def install(settings: Settings, buffer: io.StringIO) -> None:
    configure_logging(level="DEBUG", secrets=secret_values(settings))
    handler = logging.getLogger().handlers[0]
    handler.setStream(buffer)  # type: ignore[attr-defined]


@contextlib.contextmanager
def serve(settings: Settings, models: tuple | None) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, models), host="127.0.0.1", port=port,
                                           log_config=None, log_level="debug"))  # access log on, as served
    def run() -> None:
        with contextlib.suppress(SystemExit):  # a failed start-up exits (after logging why)
            server.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def assert_clean(output: str) -> None:
    leaked = [name for name, value in {**SECRETS, "openai": OPENAI_KEY, "redis": REDIS_PASSWORD,
                                       "database": DB_PASSWORD}.items() if value in output]
    assert not leaked, f"secrets in the logs: {leaked}"


@respx.mock
def test_no_secret_reaches_the_logs(app_settings: Settings, demo_models: tuple,
                                    log_output: io.StringIO) -> None:
    respx.route(host="127.0.0.1").pass_through()
    # Every platform API fails, so that retries and failures are logged with their URLs.
    respx.post(url__startswith="https://telegram.test/").mock(return_value=httpx.Response(500))
    respx.post(url__startswith="https://graph.test/").mock(return_value=httpx.Response(
        400, json={"error": {"code": 190, "message": "Invalid OAuth access token"}}))
    respx.post(url__startswith="https://slack.test/").mock(return_value=httpx.Response(
        200, json={"ok": False, "error": "invalid_auth"}))
    respx.post(url__startswith="https://api.twilio.test/").mock(return_value=httpx.Response(401))
    settings = app_settings.updated({
        **{FIELDS[k]: v for k, v in SECRETS.items()},
        "generation": GenerationSettings(backend="none", api_key=SecretStr(OPENAI_KEY)),
        "whatsapp.phone_number_id": "106540352242922", "meta.graph_url": "https://graph.test/v21.0",
        "telegram.api_url": "https://telegram.test", "slack.api_url": "https://slack.test/api",
        "twilio.account_sid": "ACtest", "twilio.api_url": "https://api.twilio.test",
        "chatwoot.url": "https://chatwoot.test",
    })
    install(settings, log_output)
    with serve(settings, demo_models) as url, httpx.Client(base_url=url, timeout=30) as c:
        # Meta's subscription handshake carries the verify token in the query string (access log).
        v = SECRETS["meta_verify_token"]
        r = c.get(f"/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=42&hub.verify_token={v}")
        assert r.text == "42"
        c.get("/webhooks/messenger?hub.mode=subscribe&hub.challenge=42&hub.verify_token=wrong")
        # Bad signatures and tokens everywhere.
        c.post("/webhooks/telegram", json={"update_id": 1}, headers={"X-Telegram-Bot-Api-Secret-Token": "no"})
        c.post("/webhooks/whatsapp", content=b"{}", headers={"X-Hub-Signature-256": "sha256=00"})
        c.post("/webhooks/slack", content=b"{}", headers={"X-Slack-Signature": "v0=00",
                                                          "X-Slack-Request-Timestamp": str(int(time.time()))})
        c.post("/webhooks/twilio", data={"From": "+1", "Body": "hi"}, headers={"X-Twilio-Signature": "x"})
        c.post(f"/integrations/chatwoot/webhook?token={SECRETS['chatwoot_webhook_token']}x", json={})
        c.get("/console/api/agents", headers={"Authorization": "Bearer wrong-key"})
        r = c.get("/console/api/agents", headers={"X-API-Key": SECRETS["admin_api_key"]})
        assert r.status_code == 200
        # Good messages whose replies fail to go out (500s, retries, then an error with a traceback).
        tg = {"update_id": 9, "message": {"message_id": 9, "chat": {"id": 5, "type": "private"},
                                          "from": {"id": 5, "is_bot": False}, "text": "where is my order"}}
        r = c.post("/webhooks/telegram", json=tg,
                   headers={"X-Telegram-Bot-Api-Secret-Token": SECRETS["telegram_secret_token"]})
        assert r.status_code == 200
        message = {"from": "31611111111", "id": "wamid.1", "type": "text", "text": {"body": "hello"}}
        wa = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {"metadata": {"phone_number_id": "106540352242922"},
                                           "messages": [message]}}]}]}).encode()
        assert c.post("/webhooks/whatsapp", content=wa, headers={
            "X-Hub-Signature-256": meta.signature(wa, SECRETS["meta_app_secret"]),
            "content-type": "application/json"}).status_code == 200
        ts = str(int(time.time()))
        sl = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {
            "type": "message", "user": "U1", "text": "hi", "channel": "D1", "ts": "1.2"}}).encode()
        sig = "v0=" + hmac.new(SECRETS["slack_signing_secret"].encode(), f"v0:{ts}:".encode() + sl,
                               hashlib.sha256).hexdigest()
        c.post("/webhooks/slack", content=sl, headers={
            "X-Slack-Signature": sig, "X-Slack-Request-Timestamp": ts, "content-type": "application/json"})
        time.sleep(6)  # the background sends and their retries
    output = log_output.getvalue()
    assert "answered 500; retrying" in output, output[-3000:]
    assert "handling a channel message failed" in output, output[-3000:]
    assert "/webhooks/whatsapp?hub.mode=subscribe" in output  # the access log is there, masked
    assert_clean(output)


def test_no_secret_when_redis_and_the_database_fail(app_settings: Settings, demo_models: tuple,
                                                    log_output: io.StringIO, tmp_path: Path) -> None:
    dead = free_port()
    settings = app_settings.updated({
        "redis.url": f"redis://default:{REDIS_PASSWORD}@127.0.0.1:{dead}/0",
        "console.secret_key": SECRETS["secret_key"]})
    install(settings, log_output)
    with serve(settings, demo_models) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/api/v1/conversations/down/messages", json={"text": "hello"})
        assert r.status_code == 503
    broken_db = app_settings.updated(
        {
            "storage.database_url": f"postgresql+psycopg://sb:{DB_PASSWORD}@127.0.0.1:{dead}/sb",
            "data_dir": tmp_path,
        }
    )
    install(broken_db, log_output)
    with serve(broken_db, demo_models):
        pass  # start-up fails: uvicorn logs the lifespan's traceback
    output = log_output.getvalue()
    assert "redis unavailable" in output and "Traceback" in output, output[-3000:]
    assert_clean(output)
