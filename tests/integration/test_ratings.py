"""Customer satisfaction (CSAT): after an agent closes a conversation the customer may rate it once
(1..5 and a comment); the rating is stored, shown in the console transcript and counted in analytics.
Real Redis and SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.config import Settings
from bot.storage.analytics import Analytics, Filters
from bot.web.app import create_app
from tests.clients import WidgetClient
from tests.integration.test_handoff import PASSWORD, login, say

pytestmark = pytest.mark.integration


@pytest.fixture
def client(app_settings: Settings, demo_models: tuple):
    settings = app_settings.updated({"handoff.business_hours": "Mon-Sun 00:00-24:00",
                                     "handoff.timezone": "UTC"})
    with WidgetClient(create_app(settings, demo_models)) as c:
        c.app.state.services.agents.create("agent1", "Sam Lee", PASSWORD, "agent")
        c.app.state.services.agents.create("boss", "Ada Admin", PASSWORD, "admin")
        yield c


def _closed_by_agent(client: TestClient, cid: str) -> str:
    """A conversation handed off, taken by Sam, answered and closed; the console's CSRF token."""
    say(client, cid, "I want to talk to a real person")
    csrf = login(client, "agent1")
    headers = {"X-CSRF-Token": csrf}
    assert client.post(f"/console/api/conversations/{cid}/claim", headers=headers).is_success
    assert client.post(f"/console/api/conversations/{cid}/messages",
                       json={"text": "Sorted, your refund is on its way."}, headers=headers).is_success
    assert client.post(f"/console/api/conversations/{cid}/close", headers=headers).is_success
    return csrf


def test_closing_asks_for_a_rating_once_and_the_console_shows_it(client: WidgetClient) -> None:
    with client.websocket_connect("/api/v1/conversations/r1/ws") as ws:  # the customer's live channel
        say(client, "r1", "I want to talk to a real person")
        csrf = login(client, "agent1")
        headers = {"X-CSRF-Token": csrf}
        assert client.post("/console/api/conversations/r1/claim", headers=headers).is_success
        assert client.post("/console/api/conversations/r1/close", headers=headers).is_success
        frames = [ws.receive_json() for _ in range(2)]
    closed = next(f for f in frames if f["type"] == "closed")
    assert closed["rating"] == {"agent": "Sam Lee"}
    state = client.get("/api/v1/conversations/r1").json()
    assert state["rating_requested"] is True and state["rating_agent"] == "Sam Lee"

    done = client.post("/api/v1/conversations/r1/rating", json={"score": 4, "comment": "Quick and kind"})
    assert done.status_code == 201, done.text
    assert done.json() == {"score": 4, "comment": "Quick and kind"}
    assert client.get("/api/v1/conversations/r1").json()["rating_requested"] is False
    again = client.post("/api/v1/conversations/r1/rating", json={"score": 1})
    assert again.status_code == 409 and again.json()["error"] == "no_rating_requested"

    with WidgetClient(client.app) as admin:  # the console transcript carries the rating
        login(admin, "boss")
        ratings = admin.get("/console/api/conversations/r1").json()["ratings"]
    assert [(r["score"], r["comment"], r["agent"]) for r in ratings] == [(4, "Quick and kind", "Sam Lee")]
    assert abs(ratings[0]["at"] - datetime.now(UTC).timestamp()) < 60

    # the analytics page counts it
    report = Analytics(client.app.state.services.transcripts.engine).report(Filters.default())
    assert report.ratings["count"] == 1 and report.ratings["average"] == 4


def test_no_rating_without_an_agent_or_for_a_hand_back(client: WidgetClient) -> None:
    assert client.post("/api/v1/conversations/plain/messages", json={"text": "hello"}).is_success
    nothing = client.post("/api/v1/conversations/plain/rating", json={"score": 5})
    assert nothing.status_code == 409 and nothing.json()["error"] == "no_rating_requested"
    say(client, "back", "I want to talk to a real person")
    headers = {"X-CSRF-Token": login(client, "agent1")}
    assert client.post("/console/api/conversations/back/claim", headers=headers).is_success
    assert client.post("/console/api/conversations/back/handback", headers=headers).is_success
    assert client.get("/api/v1/conversations/back").json()["rating_requested"] is False
    assert client.post("/api/v1/conversations/back/rating", json={"score": 5}).status_code == 409


def test_only_the_owner_rates(client: WidgetClient) -> None:
    _closed_by_agent(client, "own")
    assert client.post("/api/v1/conversations/other/messages", json={"text": "hi"}).is_success
    theirs = {"X-Conversation-Token": client.tokens["other"]}
    for headers in ({"X-Conversation-Token": ""}, {"X-Conversation-Token": "x" * 43}, theirs):
        r = client.post("/api/v1/conversations/own/rating", json={"score": 5}, headers=headers)
        assert r.status_code in (403, 404), r.text
    assert client.get("/api/v1/conversations/own").json()["rating_requested"] is True


@pytest.mark.parametrize("body", [
    {}, {"score": 0}, {"score": 6}, {"score": "5"}, {"score": 3.5}, {"score": 3, "comment": "x" * 1001},
    {"score": 3, "extra": True}, '{"score": 3, "comment": "a lone \\ud800 surrogate"}'])
def test_bad_ratings_are_422_and_keep_the_request(client: WidgetClient, body: dict | str) -> None:
    _closed_by_agent(client, "bad")
    raw = body if isinstance(body, str) else json.dumps(body)
    r = client.post("/api/v1/conversations/bad/rating", content=raw,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert client.get("/api/v1/conversations/bad").json()["rating_requested"] is True


def test_ratings_are_erased_and_purged_with_the_transcripts(client: WidgetClient) -> None:
    _closed_by_agent(client, "gone")
    rated = client.post("/api/v1/conversations/gone/rating", json={"score": 2, "comment": "meh"})
    assert rated.status_code == 201
    transcripts = client.app.state.services.transcripts
    assert len(transcripts.ratings("gone")) == 1
    assert transcripts.purge(datetime.now(UTC) - timedelta(days=1))["ratings"] == 0
    assert transcripts.erase("gone")["ratings"] == 1 and transcripts.ratings("gone") == []


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(comment=st.text(max_size=1200), score=st.integers(-3, 9))
def test_any_comment_is_stored_or_refused_never_a_5xx(client: WidgetClient, comment: str, score: int) -> None:
    if "fuzz" not in client.tokens:  # one closed conversation: the first valid rating is stored
        _closed_by_agent(client, "fuzz")
    r = client.post("/api/v1/conversations/fuzz/rating", json={"score": score, "comment": comment})
    assert r.status_code < 500, r.text
