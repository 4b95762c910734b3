"""The console dashboard's API over a real Redis and database: queue cards, search and filters,
canned replies (who may write, CSRF, validation, any Unicode never a 5xx) and the admin's disable
and password reset."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.config import Settings
from bot.web.app import create_app
from tests.clients import WidgetClient
from tests.integration.test_handoff import PASSWORD, login, say

pytestmark = pytest.mark.integration


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


def _ids(items: list[dict]) -> list[str]:
    return sorted(i["conversation_id"] for i in items)


def test_queue_cards_search_and_filters(client: TestClient) -> None:
    say(client, "dash-asked", "I want to talk to a real person")
    say(client, "dash-asked", "my kettle whistles oddly, mail me at jo@example.com")
    say(client, "dash-complaint", "I want to make a complaint, this is unacceptable")
    csrf = login(client, "agent1")
    queue = client.get("/console/api/queue").json()
    assert _ids(queue["waiting"]) == ["dash-asked", "dash-complaint"]
    asked = next(w for w in queue["waiting"] if w["conversation_id"] == "dash-asked")
    assert asked["contact"] == "jo@example.com" and asked["language"] == "en"
    assert asked["channel"] == "web" and asked["customer_messages"] == 2 and asked["last_message"]
    assert "_text" not in asked and isinstance(asked["waiting_s"], int)
    reasons = {w["conversation_id"]: w["reason"] for w in queue["waiting"]}
    only = client.get("/console/api/queue", params={"reason": reasons["dash-complaint"]}).json()
    assert _ids(only["waiting"]) == ["dash-complaint"]
    for q in ("WHISTLES", "jo@example"):
        assert _ids(client.get("/console/api/queue", params={"q": q}).json()["waiting"]) == ["dash-asked"]
    assert client.get("/console/api/queue", params={"channel": "telegram"}).json()["waiting"] == []
    assert client.get("/console/api/queue", params={"language": "zh"}).json()["waiting"] == []
    assert len(client.get("/console/api/queue", params={"language": "en"}).json()["waiting"]) == 2
    client.post("/console/api/conversations/dash-asked/claim", headers={"X-CSRF-Token": csrf})
    assigned = client.get("/console/api/queue", params={"status": "assigned"}).json()
    assert assigned["waiting"] == [] and assigned["mine"] == ["dash-asked"]
    waiting = client.get("/console/api/queue", params={"status": "waiting"}).json()
    assert _ids(waiting["waiting"]) == ["dash-complaint"] and waiting["mine"] == []
    bad = client.get("/console/api/queue", params={"status": "everything"})
    assert bad.status_code == 422
    with WidgetClient(client.app) as admin:  # admins find what any agent has
        login(admin, "admin1")
        by_sam = admin.get("/console/api/queue", params={"agent": "agent1"}).json()
        assert by_sam["waiting"] == [] and [(o["conversation_id"], o["agent"]) for o in by_sam["others"]] == [
            ("dash-asked", "agent1")]
        assert admin.get("/console/api/queue", params={"agent": "agent2"}).json()["others"] == []
        assert admin.get("/console/api/queue", params={"agent": "nobody"}).json()["others"] == []
    # An agent never sees other agents' conversations through the filters.
    with WidgetClient(client.app) as other:
        login(other, "agent2")
        assert other.get("/console/api/queue", params={"agent": "agent1"}).json()["others"] == []


def test_canned_replies_admins_write_agents_read(client: TestClient) -> None:
    csrf = login(client, "admin1")
    h = {"X-CSRF-Token": csrf}
    body = {"shortcut": "/Refund", "title": "Refund policy", "text": "Refunds take 5–7 days. 退款 ✓"}
    made = client.post("/console/api/canned", json=body, headers=h)
    assert made.status_code == 201, made.text
    reply = made.json()
    assert reply["shortcut"] == "refund" and reply["updated_by"] == "admin1"
    assert client.post("/console/api/canned", json=body, headers=h).status_code == 409  # taken
    assert client.post("/console/api/canned", json=body).status_code == 403  # no CSRF token
    for wrong in ({**body, "shortcut": "has space"}, {**body, "title": " "}, {**body, "text": ""},
                  {**body, "shortcut": "x" * 40}, {**body, "extra": 1}):
        r = client.post("/console/api/canned", json=wrong, headers=h)
        assert r.status_code == 422, (wrong, r.text)
    edited = client.put(f"/console/api/canned/{reply['id']}", json={**body, "text": "Now 3 days."}, headers=h)
    assert edited.status_code == 200 and edited.json()["text"] == "Now 3 days."
    assert client.put("/console/api/canned/999999", json=body, headers=h).status_code == 404
    assert client.put("/console/api/canned/99999999999999999999", json=body, headers=h).status_code == 422
    with WidgetClient(client.app) as agent:
        csrf2 = login(agent, "agent1")
        listed = agent.get("/console/api/canned").json()
        assert [(r["shortcut"], r["text"]) for r in listed] == [("refund", "Now 3 days.")]
        h2 = {"X-CSRF-Token": csrf2}
        mine = agent.post("/console/api/canned", json={**body, "shortcut": "mine"}, headers=h2)
        assert mine.status_code == 403
        assert agent.put(f"/console/api/canned/{reply['id']}", json=body, headers=h2).status_code == 403
        assert agent.delete(f"/console/api/canned/{reply['id']}", headers=h2).status_code == 403
    assert client.delete(f"/console/api/canned/{reply['id']}").status_code == 403  # no CSRF token
    assert client.delete(f"/console/api/canned/{reply['id']}", headers=h).status_code == 200
    assert client.delete(f"/console/api/canned/{reply['id']}", headers=h).status_code == 404
    assert client.get("/console/api/canned").json() == []
    client.post("/console/api/logout", headers=h)
    assert client.get("/console/api/canned").status_code == 401


def test_canned_reply_text_of_any_unicode_is_never_a_server_error(client: TestClient) -> None:
    h = {"X-CSRF-Token": login(client, "admin1")}

    @hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(shortcut=st.text(max_size=40), title=st.text(max_size=140), text=st.text(max_size=300))
    def check(shortcut: str, title: str, text: str) -> None:
        r = client.post("/console/api/canned", json={"shortcut": shortcut, "title": title, "text": text},
                        headers=h)
        assert r.status_code in (201, 409, 422), r.text
        assert client.get("/console/api/queue", params={"q": text[:200]}).status_code in (200, 422)

    check()


def test_disable_and_reset_password(client: TestClient) -> None:
    login(client, "agent1")
    sam = client.cookies.get("sb_console")
    h = {"X-CSRF-Token": login(client, "admin1")}
    admin = client.cookies.get("sb_console")

    def as_cookie(value: str | None) -> None:
        client.cookies.clear()
        if value:
            client.cookies.set("sb_console", value)

    def try_login(password: str) -> int:
        as_cookie(None)
        csrf = client.get("/console/api/session").json()["csrf"]
        return client.post("/console/api/login", json={"username": "agent1", "password": password},
                           headers={"X-CSRF-Token": csrf}).status_code

    assert client.post("/console/api/agents/agent1/disable", headers=h).status_code == 200
    as_cookie(sam)
    assert client.get("/console/api/queue").status_code == 401  # the session ended at once
    assert try_login(PASSWORD) == 401  # a disabled account cannot log in
    as_cookie(admin)
    assert client.post("/console/api/agents/agent1/enable", headers=h).status_code == 200
    new = "a-brand-new-password"
    assert client.post("/console/api/agents/agent1/password", json={"password": "short"},
                       headers=h).status_code == 422
    assert client.post("/console/api/agents/agent1/password", json={"password": new},
                       headers=h).status_code == 200
    assert try_login(PASSWORD) == 401
    assert try_login(new) == 200


def test_admin_page_is_html_for_browsers_and_json_for_api_calls(client: TestClient) -> None:
    login(client, "agent1")
    page = client.get("/console/admin", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 403 and "text/html" in page.headers["content-type"]
    assert "Admins only" in page.text
    api = client.get("/console/admin", headers={"Accept": "application/json"})
    assert api.status_code == 403 and api.json()["error"] == "forbidden"
    assert client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg+xml")


def test_unread_counts_are_per_agent_and_kept_by_the_server(client: TestClient) -> None:
    say(client, "unread-1", "I want to talk to a real person")
    say(client, "unread-1", "it's about a refund")

    def unread(c: TestClient) -> int:
        waiting = c.get("/console/api/queue").json()["waiting"]
        return next(w["unread"] for w in waiting if w["conversation_id"] == "unread-1")

    login(client, "agent1")
    assert unread(client) == 2
    assert client.get("/console/api/conversations/unread-1").is_success  # opening it reads it
    assert unread(client) == 0
    with WidgetClient(client.app) as other:  # another agent (or another browser of the first) agrees
        login(other, "agent2")
        assert unread(other) == 2
        login(other, "agent1")
        assert unread(other) == 0
    say(client, "unread-1", "are you there?")
    assert unread(client) == 1
