"""The widget's own endpoints: votes on answers, the customer's e-mail, availability (real Redis and
SQLite). Only the conversation's token may use them; bad bodies are 422; no text is ever a 5xx."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from bot.config import Settings
from bot.storage.db import TranscriptStore, make_engine
from bot.storage.models import Conversation
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration


@pytest.fixture
def client(app_settings: Settings, demo_models: tuple):
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        yield c


def store(app_settings: Settings) -> TranscriptStore:
    return TranscriptStore(make_engine(app_settings.resolved_database_url))


def test_a_vote_is_stored_on_its_turn(client: WidgetClient, app_settings: Settings) -> None:
    said = client.post("/api/v1/conversations/v1/messages",
                       json={"text": "how long does delivery take?", "message_id": "q1"})
    assert said.status_code == 200 and said.json()["rateable"] is True
    history = client.get("/api/v1/conversations/v1").json()["history"]
    answer = [e for e in history if e["role"] == "bot"][-1]
    assert answer["message_id"] == "q1" and answer["action"] in ("faq_answer", "generate")
    for vote in ("down", "up"):
        done = client.post("/api/v1/conversations/v1/votes", json={"message_id": "q1", "vote": vote})
        assert done.status_code == 204, done.text
    assert [t.vote for t in store(app_settings).turns("v1")] == ["up"]
    unknown = client.post("/api/v1/conversations/v1/votes", json={"message_id": "nope", "vote": "up"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_message"


def test_votes_and_email_need_the_conversations_token(client: WidgetClient, app_settings: Settings) -> None:
    said = client.post("/api/v1/conversations/mine/messages", json={"text": "hello", "message_id": "m"})
    assert said.is_success
    for headers in ({}, {"X-Conversation-Token": "x" * 43}):
        client.tokens.pop("other", None)
        vote = client.post("/api/v1/conversations/mine/votes", json={"message_id": "m", "vote": "up"},
                           headers=headers or {"X-Conversation-Token": ""})
        assert vote.status_code in (403, 404), vote.text
        email = client.put("/api/v1/conversations/mine/contact", json={"email": "a@b.co"},
                           headers=headers or {"X-Conversation-Token": ""})
        assert email.status_code in (403, 404), email.text
    # another conversation's token is not this one's
    assert client.post("/api/v1/conversations/theirs/messages", json={"text": "hi"}).is_success
    theirs = {"X-Conversation-Token": client.tokens["theirs"]}
    assert client.post("/api/v1/conversations/mine/votes", json={"message_id": "m", "vote": "up"},
                       headers=theirs).status_code == 404
    assert client.put("/api/v1/conversations/mine/contact", json={"email": "a@b.co"},
                      headers=theirs).status_code == 404
    assert [t.vote for t in store(app_settings).turns("mine")] == [None]


@pytest.mark.parametrize("body", [
    {}, {"message_id": "m", "vote": "meh"}, {"message_id": "../x", "vote": "up"},
    {"message_id": "m", "vote": "up", "extra": 1}, {"message_id": 5, "vote": "up"}])
def test_bad_vote_bodies_are_422(client: WidgetClient, body: dict) -> None:
    assert client.post("/api/v1/conversations/b1/messages", json={"text": "hi", "message_id": "m"}).is_success
    r = client.post("/api/v1/conversations/b1/votes", json=body)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request", r.text


def test_the_email_goes_on_the_session_and_in_sql(client: WidgetClient, app_settings: Settings) -> None:
    assert client.post("/api/v1/conversations/e1/messages", json={"text": "hello"}).is_success
    for bad in ({}, {"email": "nobody"}, {"email": "a@b"}, {"email": "x" * 300 + "@b.co"}, {"email": 5},
                {"email": "a@b.co", "more": 1}):
        r = client.put("/api/v1/conversations/e1/contact", json=bad)
        assert r.status_code == 422, (bad, r.text)
    r = client.put("/api/v1/conversations/e1/contact", json={"email": "kim@example.com"})
    assert r.status_code == 200 and r.json() == {"contact_email": "kim@example.com"}
    assert client.get("/api/v1/conversations/e1").json()["contact_email"] == "kim@example.com"
    with DbSession(make_engine(app_settings.resolved_database_url)) as db:
        row = db.scalar(select(Conversation).where(Conversation.id == "e1"))
        assert row is not None and row.customer_email == "kim@example.com"


def test_an_email_before_any_turn_creates_the_conversation_row(client: WidgetClient,
                                                               app_settings: Settings) -> None:
    created = client.post("/api/v1/conversations").json()
    cid, token = created["conversation_id"], created["conversation_token"]
    r = client.put(f"/api/v1/conversations/{cid}/contact", json={"email": "lee@example.org"},
                   headers={"X-Conversation-Token": token})
    assert r.status_code == 200
    with DbSession(make_engine(app_settings.resolved_database_url)) as db:
        found = db.scalar(select(Conversation.customer_email).where(Conversation.id == cid))
        assert found == "lee@example.org"


def test_availability_says_hours_and_agents(client: WidgetClient) -> None:
    body = client.get("/api/v1/availability").json()
    assert set(body) == {"open_now", "agents_online", "available"}
    assert body["available"] == (body["open_now"] and body["agents_online"])
    assert body["agents_online"] is False  # nobody logged in to this app
    strings = client.get("/api/v1/widget?lang=en").json()
    assert strings["subtitle_offline"] and strings["email_prompt"] and strings["reconnecting"]
    zh = client.get("/api/v1/widget?lang=zh-CN").json()
    assert zh["language"] == "zh" and zh["email_prompt"] != strings["email_prompt"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_any_unicode_is_never_a_5xx(client: WidgetClient, text: str) -> None:
    if "u1" not in client.tokens:
        said = client.post("/api/v1/conversations/u1/messages", json={"text": "hi", "message_id": "m"})
        assert said.is_success
    for r in (client.put("/api/v1/conversations/u1/contact", json={"email": text}),
              client.put("/api/v1/conversations/u1/contact", json={"email": f"{text}@example.com"}),
              client.post("/api/v1/conversations/u1/votes", json={"message_id": text, "vote": "up"}),
              client.post("/api/v1/conversations/u1/votes", json={"message_id": "m", "vote": text})):
        assert r.status_code < 500, (text, r.status_code, r.text)


if os.environ.get("SB_DEMO_ASSETS"):  # a developer's shortcut: reuse a built model and index
    @pytest.fixture(scope="session")
    def demo_assets() -> Path:
        return Path(os.environ["SB_DEMO_ASSETS"])
