"""helpdesk-assistant (RasaHQ's, read from ../shared/rasa_projects) runs on supportbot unchanged:
its forms complete through its own rasa-sdk action server with its validation, its rules and
stories answer, Rasa's tracker API answers in Rasa's shapes, and its test stories pass."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bot.config import Settings
from bot.web.app import create_app
from tests.conftest import HELPDESK_PROJECT

pytestmark = pytest.mark.integration
TOKEN = "tracker-secret"


@pytest.fixture
def client(helpdesk_app_settings: Settings, helpdesk_models: tuple) -> Iterator[TestClient]:
    with TestClient(create_app(helpdesk_app_settings, helpdesk_models)) as c:
        yield c


def say(client: TestClient, sender: str, text: str) -> list[dict]:
    r = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    return r.json()


def texts(replies: list[dict]) -> str:
    return " | ".join(r.get("text", "") for r in replies)


def test_open_incident_form_completes_through_the_action_server(client: TestClient) -> None:
    sender = f"it-{uuid.uuid4().hex[:8]}"
    greeting = say(client, sender, "hello")
    assert "IT Helpdesk Assistant" in texts(greeting) and "open a service request" in texts(greeting)
    assert "email address" in texts(say(client, sender, "I have a problem with my email"))
    # a digression inside the form: the story answers it, then the form asks its slot again
    helped = texts(say(client, sender, "help"))
    assert "open a service request" in helped and "email address" in helped
    asked = say(client, sender, "my address is jane.doe@example.com")
    assert "priority" in texts(asked)
    assert [b["title"] for b in asked[0]["buttons"]] == ["low", "medium", "high"]
    # the project's validate_priority (on its action server) refuses an unknown priority
    refused = texts(say(client, sender, '/inform{"priority":"extreme"}'))
    assert 'Sorry "extreme" is not a valid priority' in refused and "priority of this issue" in refused
    assert "problem description" in texts(say(client, sender, '/inform{"priority":"high"}'))
    confirm = say(client, sender, "Outlook shows an empty inbox since this morning")
    assert "email: jane.doe@example.com" in confirm[0]["text"]
    assert "title: Problem with email" in confirm[0]["text"]  # from_trigger_intent: problem_email
    assert [b["title"] for b in confirm[0]["buttons"]] == ["Yes", "No, cancel the incident"]
    done = texts(say(client, sender, "/affirm"))
    assert "would be opened if ServiceNow was connected" in done and "priority: high" in done

    tracker = client.get(f"/conversations/{sender}/tracker", params={"token": TOKEN}).json()
    assert tracker["sender_id"] == sender and tracker["active_loop"] == {}
    assert tracker["slots"]["previous_email"] == "jane.doe@example.com"  # SlotSet from action_open_incident
    assert tracker["slots"]["email"] is None  # AllSlotsReset
    names = [e.get("name") for e in tracker["events"] if e["event"] == "action"]
    assert names[:2] == ["action_session_start", "action_listen"]
    assert "validate_open_incident_form" not in names  # validation runs inside the form, as in Rasa
    assert names.count("open_incident_form") >= 5 and names[-2:] == ["action_open_incident", "action_listen"]
    loops = [e.get("name") for e in tracker["events"] if e["event"] == "active_loop"]
    assert loops[0] == "open_incident_form" and loops[-1] is None


def test_incident_status_form_uses_the_previous_email(client: TestClient) -> None:
    sender = f"it-{uuid.uuid4().hex[:8]}"
    say(client, sender, "I need to open an incident")
    say(client, sender, "sam@example.org")
    say(client, sender, '/inform{"priority":"low"}')
    say(client, sender, "the printer on floor 3 jams")
    say(client, sender, "printer jam")
    assert "cancelled the incident" in texts(say(client, sender, "/deny"))
    asked = texts(say(client, sender, "what's the status of my ticket?"))
    assert "last email address you used, sam@example.org" in asked  # the project's action_ask_email
    status = texts(say(client, sender, "/affirm"))
    assert "Since ServiceNow isn't connected" in status and "sam@example.org" in status


def test_rules_stories_and_fallbacks(client: TestClient) -> None:
    sender = f"it-{uuid.uuid4().hex[:8]}"
    assert texts(say(client, sender, "are you a bot?")) == "I am a bot, powered by Rasa."
    handoff = say(client, sender, "I want to talk to a person now")
    assert "transferred to a human agent" in handoff[0]["text"]
    assert handoff[1]["buttons"] == [{"title": "Financial Assistant",
                                      "payload": '/trigger_handoff{"handoff_to":"financial_demo"}'}]
    assert texts(say(client, sender, "uh no")) == "What else can I help you with?"
    # a button the action server (not the domain) offered is accepted, as Rasa accepts it
    moved = say(client, sender, '/trigger_handoff{"handoff_to":"financial_demo"}')
    assert moved[0]["text"] == "Alright, I'll try to transfer you."
    assert moved[1]["custom"] == {"handoff_host": "http://localhost:5006", "title": "Financial Assistant"}


def test_model_parse_in_rasa_shape(client: TestClient) -> None:
    text = "open an urgent issue, reply to ops@corp.example"
    body = client.post("/model/parse", json={"text": text}).json()
    assert body["intent"]["name"] == "open_incident"
    by_entity: dict[str, dict] = {}
    for e in body["entities"]:
        by_entity.setdefault(e["entity"], e)  # the first of each, as a from_entity slot takes it
    assert by_entity["email"]["value"] == "ops@corp.example"
    assert text[by_entity["email"]["start"]:by_entity["email"]["end"]] == "ops@corp.example"
    assert by_entity["priority"]["value"] == "high"  # the project's synonym: urgent -> high
    low = client.post("/model/parse", json={"text": "zzqx"}).json()
    assert low["intent"]["name"] == "nlu_fallback"  # the FallbackClassifier's threshold (0.7)


def test_tracker_api_needs_its_token(client: TestClient) -> None:
    sender = f"it-{uuid.uuid4().hex[:8]}"
    say(client, sender, "hello")
    assert client.get(f"/conversations/{sender}/tracker").status_code == 401
    assert client.get(f"/conversations/{sender}/tracker", params={"token": "guess"}).status_code == 401
    body = client.get(f"/conversations/{sender}/tracker", params={"token": TOKEN,
                                                                  "include_events": "NONE"}).json()
    assert "events" not in body and body["latest_message"]["intent"]["name"] == "greet"
    assert body["latest_action_name"] == "action_listen"
    unknown = client.get("/conversations/nobody-here/tracker", params={"token": TOKEN}).json()
    assert unknown["events"] == [] and unknown["sender_id"] == "nobody-here"
    bad = client.get(f"/conversations/{sender}/tracker", params={"token": TOKEN, "include_events": "SOME"})
    assert bad.status_code == 422


def test_tracker_api_closed_without_a_token(helpdesk_app_settings: Settings, helpdesk_models: tuple) -> None:
    settings = helpdesk_app_settings.updated({"rasa.auth_token": None})
    with TestClient(create_app(settings, helpdesk_models)) as c:
        r = c.get("/conversations/anyone/tracker", params={"token": "x"})
        assert r.status_code == 403 and r.json()["error"] == "api_disabled"


def test_trigger_intent(client: TestClient) -> None:
    sender = f"it-{uuid.uuid4().hex[:8]}"
    r = client.post(f"/conversations/{sender}/trigger_intent", params={"token": TOKEN},
                    json={"name": "incident_status", "entities": {"email": "kim@example.net"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "ServiceNow isn't connected" in body["messages"][0]["text"]  # email prefilled: form done at once
    assert body["messages"][0]["recipient_id"] == sender
    assert body["tracker"]["slots"]["previous_email"] == "kim@example.net"
    r = client.post(f"/conversations/{sender}/trigger_intent", params={"token": TOKEN},
                    json={"name": "pizza"})
    assert r.status_code == 422 and r.json()["error"] == "unknown_intent"


def test_action_server_down_gets_a_polite_reply_and_a_handoff_offer(
        helpdesk_app_settings: Settings, helpdesk_models: tuple) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    settings = helpdesk_app_settings.updated({"rasa.action_endpoint": f"http://127.0.0.1:{port}/webhook"})
    with TestClient(create_app(settings, helpdesk_models)) as c:
        replies = say(c, "down-1", "I have a problem with my email")
    assert "something went wrong on our side" in replies[0]["text"]
    assert {"title": "Yes, connect me", "payload": "/talk_to_human"} in replies[0]["buttons"]


def test_slow_action_server_times_out_politely(helpdesk_app_settings: Settings,
                                               helpdesk_models: tuple) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])  # accepted, never answered
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/webhook"
    settings = helpdesk_app_settings.updated({"rasa.action_endpoint": url, "rasa.action_timeout_s": 0.5})
    try:
        with TestClient(create_app(settings, helpdesk_models)) as c:
            replies = say(c, "slow-1", "what's the status of my incident?")
            assert "something went wrong on our side" in replies[0]["text"]
            again = say(c, "slow-1", "talk to a human please")  # the conversation goes on
            assert again
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        silent.close()


def test_supportbot_test_runs_the_projects_test_stories(helpdesk_assets: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import app

    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(helpdesk_assets))
    monkeypatch.setenv("SUPPORTBOT_TRAIN__MODE", "frozen")
    monkeypatch.setenv("SUPPORTBOT_TRAIN__SEED", "13")
    junit = tmp_path / "rasa.xml"
    result = CliRunner().invoke(app, ["test", "--rasa", str(HELPDESK_PROJECT), "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    assert "12/12 test stories passed" in result.output
    assert 'tests="12"' in junit.read_text() and 'failures="0"' in junit.read_text()


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=st.text(alphabet=st.characters(blacklist_categories=()), min_size=1, max_size=200),
       intent=st.text(min_size=1, max_size=40), value=st.text(max_size=40))
def test_any_input_gets_an_answer_or_a_clear_error(client: TestClient, text: str, intent: str,
                                                   value: str) -> None:
    """Any Unicode (lone surrogates too), any `/intent{...}` and any trigger_intent: never a 5xx,
    and the conversation still answers afterwards."""
    sender = "fuzz-" + uuid.uuid4().hex[:8]
    r = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert r.status_code in (200, 400, 422), r.text
    payload = "/" + intent + json.dumps({"priority": value})
    r = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": payload})
    assert r.status_code in (200, 400, 422), r.text
    r = client.post(f"/conversations/{sender}/trigger_intent", params={"token": TOKEN},
                    json={"name": intent, "entities": {"email": value}})
    assert r.status_code in (200, 404, 422), r.text
    assert say(client, sender, "are you a bot?")
