"""The agent console's sessions and authorization, over a real Redis, driven as an attacker would:
replayed cookies, sessions outliving a password change or a disabled account, password guessing
across many addresses, agents reaching into conversations that are not theirs."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from starlette.websockets import WebSocketDisconnect

from bot.config import RateLimitSettings, Settings
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
COOKIE = "sb_console"


@dataclass
class Browser:
    """One agent's browser: its own console cookie and CSRF token, over the test's one client
    (one app, one event loop); the client's cookie jar is emptied before every call."""

    client: WidgetClient
    cookie: str = ""
    csrf: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def _send(self, method: str, path: str, **kw: object):  # type: ignore[no-untyped-def]
        self.client.cookies.clear()
        headers = {"X-CSRF-Token": self.csrf, **self.headers, **kw.pop("headers", {})}  # type: ignore[dict-item]
        if self.cookie:
            headers["Cookie"] = f"{COOKIE}={self.cookie}"
        r = self.client.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]
        if COOKIE in r.cookies:
            self.cookie = r.cookies[COOKIE]
        elif "set-cookie" in r.headers and f"{COOKIE}=\"\"" in r.headers["set-cookie"]:
            self.cookie = ""  # deleted by the server
        self.client.cookies.clear()
        return r

    def get(self, path: str, **kw: object):  # type: ignore[no-untyped-def]
        return self._send("GET", path, **kw)

    def post(self, path: str, body: dict | None = None, **kw: object):  # type: ignore[no-untyped-def]
        return self._send("POST", path, json=body or {}, **kw)

    def login(self, username: str, password: str = PASSWORD, **kw: object):  # type: ignore[no-untyped-def]
        self.csrf = self.get("/console/api/session").json()["csrf"]
        r = self.post("/console/api/login", {"username": username, "password": password}, **kw)
        if r.status_code == 200:
            self.csrf = r.json()["csrf"]
        return r

    def websocket(self):  # type: ignore[no-untyped-def]
        self.client.cookies.clear()
        return self.client.websocket_connect("/console/ws", headers={"Cookie": f"{COOKIE}={self.cookie}"})


@pytest.fixture
def settings(app_settings: Settings) -> Settings:
    return app_settings.updated({"handoff.business_hours": "Mon-Sun 00:00-24:00", "handoff.timezone": "UTC"})


def _started(settings: Settings, demo_models: tuple, **kw: object) -> Iterator[WidgetClient]:
    with WidgetClient(create_app(settings, demo_models), **kw) as c:  # type: ignore[arg-type]
        agents = c.app.state.services.agents
        agents.create("admin1", "Ada Admin", PASSWORD, "admin")
        agents.create("agent1", "Sam Lee", PASSWORD, "agent")
        agents.create("agent2", "Kim Roe", PASSWORD, "agent")
        yield c


@pytest.fixture
def client(settings: Settings, demo_models: tuple) -> Iterator[WidgetClient]:
    yield from _started(settings, demo_models)


def logged_in(client: WidgetClient, username: str) -> Browser:
    browser = Browser(client)
    r = browser.login(username)
    assert r.status_code == 200, r.text
    return browser


def ws_refused(browser: Browser) -> bool:
    """The console WebSocket closes (1008) before accepting."""
    try:
        with browser.websocket():
            return False
    except WebSocketDisconnect as exc:
        return exc.code == 1008


def say(client: WidgetClient, cid: str, text: str) -> None:
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
    assert r.status_code == 200, r.text


# -- sessions ----------------------------------------------------------------------------------

def test_a_cookie_captured_before_logout_is_refused_after_it(client: WidgetClient) -> None:
    agent = logged_in(client, "agent1")
    captured, csrf = agent.cookie, agent.csrf
    assert agent.get("/console/api/queue").status_code == 200
    assert agent.post("/console/api/logout").status_code == 200
    thief = Browser(client, cookie=captured, csrf=csrf)
    r = thief.get("/console/api/queue")
    assert r.status_code == 401 and r.json()["error"] == "login_required"
    assert thief.post("/console/api/conversations/c1/claim").status_code == 401
    assert thief.get("/console/api/session").json()["agent"] is None
    assert thief.get("/console", follow_redirects=False).status_code == 303
    assert ws_refused(thief)


def test_the_cookie_is_an_opaque_id_that_changes_at_every_login(client: WidgetClient,
                                                                 settings: Settings) -> None:
    browser = Browser(client)
    browser.csrf = browser.get("/console/api/session").json()["csrf"]
    pre_login = browser.cookie
    assert pre_login
    assert browser.post("/console/api/login", {"username": "agent1", "password": PASSWORD}).status_code == 200
    first = browser.cookie
    assert first and first != pre_login
    for part in first.split("."):  # nothing readable in it: no agent id, no CSRF token
        assert b"agent" not in base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    assert Browser(client, cookie=pre_login).get("/console/api/session").json()["agent"] is None
    # Logging in again (as anyone) in the same browser discards the session it had.
    assert browser.login("agent2").status_code == 200
    assert browser.cookie not in (first, pre_login)
    assert Browser(client, cookie=first).get("/console/api/queue").status_code == 401
    assert browser.get("/console/api/session").json()["agent"]["username"] == "agent2"
    # Redis holds the session with its TTL, under the app's prefix, and never the id itself.
    r = redis.Redis.from_url(settings.redis.dsn, decode_responses=True)
    keys = list(r.scan_iter(f"{settings.sessions.key_prefix}:console:session:*"))
    assert len(keys) == 1
    assert 0 < r.ttl(keys[0]) <= settings.console.console_session_s
    assert r.hget(keys[0], "csrf") == browser.csrf
    sid = browser.cookie.rsplit(".", 1)[0]
    assert not any(sid in k for k in r.scan_iter(f"{settings.sessions.key_prefix}:*"))


@pytest.mark.timeout(120)
def test_an_admin_changing_a_password_ends_the_agents_sessions(client: WidgetClient) -> None:
    agent, elsewhere = logged_in(client, "agent1"), logged_in(client, "agent1")
    admin = logged_in(client, "admin1")
    with agent.websocket() as live:  # open before the change: closed by it
        r = admin.post("/console/api/agents/agent1/password", {"password": NEW_PASSWORD})
        assert r.status_code == 200, r.text
        with pytest.raises(WebSocketDisconnect) as closed:
            live.receive_json()
        assert closed.value.code == 1008
    for browser in (agent, elsewhere):
        assert browser.get("/console/api/queue").status_code == 401
        assert ws_refused(browser)
    assert admin.get("/console/api/queue").status_code == 200  # the admin's own session is untouched
    assert Browser(client).login("agent1", PASSWORD).status_code == 401
    assert Browser(client).login("agent1", NEW_PASSWORD).status_code == 200
    short = admin.post("/console/api/agents/agent1/password", {"password": "short"})
    assert short.status_code == 422
    assert admin.post("/console/api/agents/nobody/password", {"password": NEW_PASSWORD}).status_code == 404


def test_disabling_an_agent_ends_its_sessions_and_log_ins(client: WidgetClient) -> None:
    agent, admin = logged_in(client, "agent1"), logged_in(client, "admin1")
    r = admin.post("/console/api/agents/agent1/disable")
    assert r.status_code == 200 and r.json()["active"] is False
    assert agent.get("/console/api/queue").status_code == 401
    assert ws_refused(agent)
    assert Browser(client).login("agent1").status_code == 401
    listed = {a["username"]: a["active"] for a in admin.get("/console/api/agents").json()}
    assert listed == {"admin1": True, "agent1": False, "agent2": True}
    # Writes need the CSRF token; a plain agent is no admin; the last admin cannot be disabled.
    assert admin.post("/console/api/agents/agent1/enable", headers={"X-CSRF-Token": ""}).status_code == 403
    other = logged_in(client, "agent2")
    assert other.post("/console/api/agents/agent1/enable").status_code == 403
    last = admin.post("/console/api/agents/admin1/disable")
    assert last.status_code == 409 and last.json()["error"] == "last_admin"
    assert admin.post("/console/api/agents/agent1/enable").json()["active"] is True
    assert Browser(client).login("agent1").status_code == 200


def test_changing_ones_own_password_ends_the_other_sessions_and_rotates_this_one(
        client: WidgetClient) -> None:
    here, there = logged_in(client, "agent1"), logged_in(client, "agent1")
    before = here.cookie
    wrong = here.post("/console/api/password",
                      {"old_password": "not my password", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 403 and wrong.json()["error"] == "wrong_password"
    no_csrf = here.post("/console/api/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
                        headers={"X-CSRF-Token": "forged"})
    assert no_csrf.status_code == 403 and no_csrf.json()["error"] == "csrf_failed"
    r = here.post("/console/api/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    here.csrf = r.json()["csrf"]
    assert here.cookie != before
    assert here.get("/console/api/queue").status_code == 200
    assert Browser(client, cookie=before).get("/console/api/queue").status_code == 401
    assert there.get("/console/api/queue").status_code == 401
    assert Browser(client).login("agent1", NEW_PASSWORD).status_code == 200


# -- log-in throttle ---------------------------------------------------------------------------

@pytest.fixture
def behind_proxy(settings: Settings, demo_models: tuple) -> Iterator[WidgetClient]:
    """Clients arrive through a trusted proxy, so each request can come from its own address;
    the per-address limit is 3 log-ins a minute."""
    proxied = settings.updated({"web.trusted_proxies": ["127.0.0.1"],
                                          "rate_limit": RateLimitSettings(login_per_ip_per_minute=3)})
    yield from _started(proxied, demo_models, client=("127.0.0.1", 50000))


def test_failed_logins_are_limited_per_account_whatever_the_address(behind_proxy: WidgetClient) -> None:
    def attempt(n: int, username: str, password: str):  # type: ignore[no-untyped-def]
        return Browser(behind_proxy, headers={"X-Forwarded-For": f"203.0.113.{n}"}).login(username, password)

    assert [attempt(n, "agent1", "wrong password!").status_code for n in range(1, 6)] == [401] * 5
    blocked = attempt(6, "agent1", PASSWORD)  # the right password, from a fresh address
    assert blocked.status_code == 429, blocked.text
    assert blocked.json()["error"] == "rate_limited" and blocked.json()["limit"] == "login_account"
    assert 1 <= int(blocked.headers["retry-after"]) <= 15 * 60
    assert attempt(7, "AGENT1 ", PASSWORD).status_code == 429  # the same account, however written
    assert attempt(8, "agent2", PASSWORD).status_code == 200  # other accounts are not affected
    # The per-address limit (3 a minute here) still holds on its own.
    same = [attempt(9, "agent2", "wrong password!") for _ in range(4)]
    assert [r.status_code for r in same] == [401, 401, 401, 429] and same[-1].json()["limit"] == "login"


def test_a_successful_login_clears_the_failure_count(behind_proxy: WidgetClient) -> None:
    def attempt(n: int, password: str) -> int:
        return Browser(behind_proxy, headers={"X-Forwarded-For": f"198.51.100.{n}"}).login(
            "agent2", password).status_code

    assert [attempt(n, "wrong password!") for n in range(1, 5)] == [401] * 4
    assert attempt(5, PASSWORD) == 200
    assert [attempt(n, "wrong password!") for n in range(6, 11)] == [401] * 5


# -- which conversations an agent may touch ----------------------------------------------------

@pytest.fixture
def conversations(client: WidgetClient) -> dict[str, Browser]:
    """`bot-only` never handed off; `waiting` in the queue; `theirs` claimed by agent2."""
    say(client, "bot-only", "where is my order?")
    say(client, "waiting", "I want to speak to a human")
    say(client, "theirs", "I want to speak to a human")
    agent2 = logged_in(client, "agent2")
    assert agent2.post("/console/api/conversations/theirs/claim").status_code == 200
    return {"agent1": logged_in(client, "agent1"), "agent2": agent2, "admin": logged_in(client, "admin1")}


ACTIONS = ("close", "handback", "messages", "typing")


def act(browser: Browser, cid: str, action: str):  # type: ignore[no-untyped-def]
    body = {"text": "hello from the console"} if action == "messages" else {}
    return browser.post(f"/console/api/conversations/{cid}/{action}", body)


def test_an_agent_cannot_touch_a_conversation_never_handed_off(conversations: dict[str, Browser]) -> None:
    agent = conversations["agent1"]
    unknown = agent.get("/console/api/conversations/no-such-conv")
    assert unknown.status_code == 404
    r = agent.get("/console/api/conversations/bot-only")  # the same answer: existence is not revealed
    assert r.status_code == 404
    assert r.json() == {"error": "unknown_conversation", "detail": "no conversation 'bot-only'"}
    assert unknown.json() == {"error": "unknown_conversation", "detail": "no conversation 'no-such-conv'"}
    for action in (*ACTIONS, "claim"):
        r = act(agent, "bot-only", action)
        assert r.status_code == 404 and r.json()["error"] == "unknown_conversation", (action, r.text)


def test_an_agent_cannot_touch_another_agents_conversation(conversations: dict[str, Browser]) -> None:
    agent = conversations["agent1"]
    r = agent.get("/console/api/conversations/theirs")
    assert r.status_code == 403 and r.json()["error"] == "not_your_conversation"
    for action in (*ACTIONS, "claim"):
        r = act(agent, "theirs", action)
        assert r.status_code == 403 and r.json()["error"] == "not_your_conversation", (action, r.text)
    # A waiting one may be read and claimed, but nothing else before the claim.
    assert agent.get("/console/api/conversations/waiting").status_code == 200
    for action in ACTIONS:
        assert act(agent, "waiting", action).status_code == 403, action
    assert act(agent, "waiting", "claim").status_code == 200
    assert act(agent, "waiting", "messages").status_code == 200
    assert act(agent, "waiting", "close").status_code == 200
    assert act(agent, "waiting", "messages").status_code == 404  # closed: out of agent1's reach again
    assert act(conversations["agent2"], "theirs", "messages").status_code == 200  # the owner still can


def test_an_admin_may_act_on_every_conversation(conversations: dict[str, Browser]) -> None:
    admin = conversations["admin"]
    for cid in ("bot-only", "waiting", "theirs"):
        assert admin.get(f"/console/api/conversations/{cid}").status_code == 200, cid
    assert act(admin, "theirs", "messages").status_code == 200
    assert act(admin, "theirs", "typing").status_code == 200
    assert act(admin, "theirs", "handback").status_code == 200
    assert act(admin, "waiting", "close").status_code == 200
    assert act(admin, "bot-only", "close").status_code == 200
    assert admin.get("/console/api/conversations/no-such-conv").status_code == 404


# -- pages and caching -------------------------------------------------------------------------

def test_a_non_admin_opening_the_admin_page_gets_an_html_403(client: WidgetClient) -> None:
    r = logged_in(client, "agent1").get("/console/admin")
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert 'href="/console"' in r.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)  # the CSP forbids inline scripts
    assert "script-src 'self'" in r.headers["content-security-policy"]
    admin = logged_in(client, "admin1").get("/console/admin")
    assert admin.status_code == 200 and "id=\"agents\"" in admin.text
    api = logged_in(client, "agent1").get("/console/api/agents")  # the JSON API keeps JSON errors
    assert api.status_code == 403 and api.json()["error"] == "forbidden"


def test_every_console_response_says_no_store(client: WidgetClient) -> None:
    anonymous, agent = Browser(client), logged_in(client, "agent1")
    responses = [anonymous.get("/console/login"), anonymous.get("/console", follow_redirects=False),
                 anonymous.get("/console/admin", follow_redirects=False), anonymous.get("/console/api/queue"),
                 agent.get("/console"), agent.get("/console/admin"), agent.get("/console/api/session"),
                 agent.get("/console/api/queue"), agent.post("/console/api/logout")]
    for r in responses:
        assert r.headers.get("cache-control") == "no-store", (r.request.url, r.status_code)
