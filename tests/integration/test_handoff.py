"""Hand-off over a real Redis: the claim race, routing while an agent owns a conversation, the
out-of-hours message, and the console's auth, roles and CSRF."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.dialogue.domain import Domain
from bot.handoff.queue import RedisHandoffQueue
from bot.handoff.service import HandoffError
from bot.sessions.store import RedisSessionStore
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"
TEXTS = {name: r[0].text for name, r in
         Domain.load(Path(__file__).resolve().parents[2] / "training_data" / "domain.yml").responses.items()}


async def test_many_concurrent_claims_have_one_winner(store: RedisSessionStore, key_prefix: str) -> None:
    queue = RedisHandoffQueue(store.r, key_prefix)
    await queue.enqueue("c1", "customer_asked")
    await queue.enqueue("c2", "complaint", priority=1)
    assert [w["conversation_id"] for w in await queue.waiting()] == ["c2", "c1"]  # priority first
    results = await asyncio.gather(*[queue.claim("c1", f"agent{i}") for i in range(25)])
    assert sum(results) == 1
    state = await queue.state("c1")
    assert state["status"] == "assigned" and state["agent"] == f"agent{results.index(True)}"
    assert [w["conversation_id"] for w in await queue.waiting()] == ["c2"]


@pytest.fixture
def settings(app_settings: Settings) -> Settings:
    return app_settings.updated({"handoff.business_hours": "Mon-Sun 00:00-24:00", "handoff.timezone": "UTC"})


@pytest.fixture
def client(settings: Settings, demo_models: tuple):
    with WidgetClient(create_app(settings, demo_models)) as c:
        agents = c.app.state.services.agents
        agents.create("admin1", "Ada Admin", PASSWORD, "admin")
        agents.create("agent1", "Sam Lee", PASSWORD, "agent")
        agents.create("agent2", "Kim Roe", PASSWORD, "agent")
        yield c


def login(c: TestClient, username: str) -> str:
    csrf = c.get("/console/api/session").json()["csrf"]
    r = c.post("/console/api/login", json={"username": username, "password": PASSWORD},
               headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    return r.json()["csrf"]


def say(c: TestClient, cid: str, text: str) -> list[dict]:
    r = c.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
    assert r.status_code == 200, r.text
    return r.json()["replies"]


def test_anonymous_wrong_role_and_csrf_less_calls_are_rejected(client: TestClient) -> None:
    assert client.get("/console", follow_redirects=False).status_code == 303
    assert client.get("/console/api/queue").json()["error"] == "login_required"
    anonymous = client.post("/console/api/conversations/x/claim", headers={"X-CSRF-Token": "x"})
    assert anonymous.status_code in (401, 403)
    csrf = client.get("/console/api/session").json()["csrf"]
    bad = client.post("/console/api/login", json={"username": "agent1", "password": "nope-nope-nope"},
                      headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 401 and bad.json()["error"] == "bad_credentials"
    no_csrf = client.post("/console/api/login", json={"username": "agent1", "password": PASSWORD})
    assert no_csrf.status_code == 403 and no_csrf.json()["error"] == "csrf_failed"
    csrf = login(client, "agent1")
    assert client.get("/console/api/agents").status_code == 403
    assert client.get("/console/admin").status_code == 403
    r = client.post("/console/api/agents", json={"username": "eve", "display_name": "Eve",
                                                 "password": PASSWORD}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    r = client.post("/console/api/logout")
    assert r.status_code == 403  # no CSRF token: still logged in
    assert client.get("/console/api/queue").status_code == 200


def test_admin_creates_agents(client: TestClient) -> None:
    csrf = login(client, "admin1")
    r = client.post("/console/api/agents", json={"username": "new.agent", "display_name": "New Agent",
                                                 "password": PASSWORD}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    r = client.post("/console/api/agents", json={"username": "new.agent", "display_name": "Again",
                                                 "password": PASSWORD}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422 and "taken" in r.json()["detail"]
    r = client.post("/console/api/agents", json={"username": "short", "display_name": "S",
                                                 "password": "short"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422
    assert "new.agent" in [a["username"] for a in client.get("/console/api/agents").json()]


def test_round_trip_through_the_console_api(client: TestClient) -> None:
    cid = "handoff-rt"
    say(client, cid, "where is my order?")
    offline = say(client, cid, "I want to talk to a real person")  # no agent online yet
    assert "isn't available right now" in offline[0]["text"] and "e-mail address" in offline[0]["text"]
    # Waiting for a person, the bot acknowledges, asks for an address and answers the FAQ.
    ack = say(client, cid, "hello? <script>alert(1)</script>")
    assert [r["text"] for r in ack] == [TEXTS["utter_handoff_pending_ask_email"]]
    contact = say(client, cid, "what's your email address?")
    assert "help@kettleandkin.example" in contact[0]["text"]
    assert contact[-1]["text"] == TEXTS["utter_ask_email"]
    saved = say(client, cid, "sure, it's jo.bloggs+kk@example.co.uk thanks")
    assert "jo.bloggs+kk@example.co.uk" in saved[0]["text"]
    assert [r["text"] for r in say(client, cid, "ok")] == [TEXTS["utter_handoff_pending"]]
    csrf = login(client, "agent1")
    queue = client.get("/console/api/queue").json()
    assert [w["conversation_id"] for w in queue["waiting"]] == [cid]
    assert queue["waiting"][0]["reason"] == "customer_asked"
    view = client.get(f"/console/api/conversations/{cid}").json()
    assert view["handoff_reason"] == "customer_asked"
    assert view["contact_email"] == "jo.bloggs+kk@example.co.uk"  # the agent sees where to reply
    assert view["language"] == "en"  # the agent sees the customer's language
    assert "hello? <script>alert(1)</script>" in [e["text"] for e in view["history"]]
    assert view["history"][0]["understood"]["intent"]  # what the bot understood is shown
    assert view["suggestions"]
    with client.websocket_connect(f"/api/v1/conversations/{cid}/ws") as customer:
        h = {"X-CSRF-Token": csrf}
        assert client.post(f"/console/api/conversations/{cid}/messages", json={"text": "hi"},
                           headers=h).json()["error"] == "not_your_conversation"
        assert client.post(f"/console/api/conversations/{cid}/claim", headers=h).status_code == 200
        assert customer.receive_json()["type"] == "agent_joined"
        assert client.post(f"/console/api/conversations/{cid}/claim", headers=h).status_code == 409
        assert client.get("/console/api/queue").json()["mine"] == [cid]
        r = client.post(f"/console/api/conversations/{cid}/messages",
                        json={"text": "Hi, I'm Sam. Let me look."}, headers=h)
        assert r.status_code == 200
        pushed = customer.receive_json()
        assert pushed == {"type": "agent_message", "agent": "Sam Lee", "text": "Hi, I'm Sam. Let me look.",
                          "at": pushed["at"]}
        assert say(client, cid, "thanks, it's KK-204871") == []  # goes to the agent, not the bot
        assert client.post(f"/console/api/conversations/{cid}/handback", headers=h).status_code == 200
        assert customer.receive_json()["type"] == "bot_back"
        assert client.get("/console/api/queue").json()["mine"] == []
    assert "order number" in say(client, cid, "where is my order?")[0]["text"]  # the bot again
    transcripts = client.app.state.services.transcripts
    assert [m.text for m in transcripts.agent_messages(cid)] == ["Hi, I'm Sam. Let me look."]
    roles = [e["role"] for e in client.get(f"/api/v1/conversations/{cid}").json()["history"]]
    assert "agent" in roles and "system" in roles


def test_a_second_agent_cannot_reply_or_hand_back(client: TestClient, settings: Settings) -> None:
    cid = "handoff-two"
    say(client, cid, "I want to speak to a human")
    csrf = login(client, "agent1")
    client.post(f"/console/api/conversations/{cid}/claim", headers={"X-CSRF-Token": csrf})
    with WidgetClient(client.app) as other:
        csrf2 = login(other, "agent2")
        r = other.post(f"/console/api/conversations/{cid}/messages", json={"text": "me too"},
                       headers={"X-CSRF-Token": csrf2})
        assert r.status_code == 403 and r.json()["error"] == "not_your_conversation"
        r = other.post(f"/console/api/conversations/{cid}/handback", headers={"X-CSRF-Token": csrf2})
        assert r.status_code == 403 and r.json()["error"] == "not_your_conversation"


async def test_the_bot_never_answers_once_an_agent_has_the_conversation_or_types(
        store: RedisSessionStore, key_prefix: str) -> None:
    from bot.handoff.hours import BusinessHours
    from bot.handoff.service import HandoffService
    from bot.types import Session

    root = Path(__file__).resolve().parents[2]
    queue = RedisHandoffQueue(store.r, key_prefix)
    service = HandoffService(store, queue, Domain.load(root / "training_data" / "domain.yml"),
                             BusinessHours("Mon-Sun 00:00-00:01", "UTC"))
    typed = Session(conversation_id="t1", handoff=True)
    await queue.set_typing("t1", "agent7")
    assert not await service.bot_may_answer(typed)
    assert not await service.bot_may_answer(Session(conversation_id="t2", handoff=True, agent="agent7"))
    waiting = Session(conversation_id="t3", handoff=True)
    assert await service.bot_may_answer(waiting) and not await service.agents_available()
    assert "isn't available" in (await service.on_handoff(waiting, "customer_asked"))[0].text
    with pytest.raises(HandoffError):
        await service.claim("nobody", "a", "A")


def test_chatwoot_bridge_is_mounted_when_configured(settings: Settings, demo_models: tuple) -> None:
    configured = settings.updated({"chatwoot.url": "http://127.0.0.1:9", "chatwoot.api_token": "t",
                                             "chatwoot.webhook_token": "s3cret"})
    with WidgetClient(create_app(configured, demo_models)) as c:
        r = c.post("/integrations/chatwoot/webhook?token=wrong", json={"event": "message_created"})
        assert r.status_code == 401 and r.json()["error"] == "bad_token"
    with WidgetClient(create_app(settings, demo_models)) as c:
        assert c.post("/integrations/chatwoot/webhook", json={}).status_code == 404
