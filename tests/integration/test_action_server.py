"""The action-server client against the real rasa-sdk 3.21 server running helpdesk-assistant's custom
actions (and a tiny action package of our own for the rejection answer), plus the transport failures
a caller has to degrade on."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.rasa.action_server import ActionRejected, ActionResult, ActionServer, ActionServerError
from tests.conftest import HELPDESK_PROJECT
from tests.rasa_action_server import running_action_server

pytestmark = pytest.mark.integration

RASA_VERSION = "3.0.0"  # the project's Rasa version; rasa-sdk only warns when the minor differs
HELPDESK_ACTIONS = {
    "action_ask_email", "action_open_incident", "action_check_incident_status", "action_handoff_options",
    "action_handoff", "validate_open_incident_form", "validate_incident_status_form",
}

# Our own action package: one action that declines to run, the way an action rejects a form slot.
REJECTING_ACTIONS = '''
from rasa_sdk import Action, ActionExecutionRejection


class ActionRefuse(Action):
    def name(self):
        return "action_refuse"

    def run(self, dispatcher, tracker, domain):
        raise ActionExecutionRejection(self.name(), "refused on purpose")
'''


@pytest.fixture(scope="module")
def domain() -> dict[str, Any]:
    """The project's own domain, read at test time and sent as the action call's `domain`."""
    return yaml.safe_load((HELPDESK_PROJECT / "domain.yml").read_text())


@pytest.fixture(scope="module")
def rejecting_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("rejecting-project")
    (project / "actions").mkdir()
    (project / "actions" / "__init__.py").write_text("")
    (project / "actions" / "actions.py").write_text(REJECTING_ACTIONS)
    return project


def user_event(text: str, intent: str = "inform") -> dict[str, Any]:
    return {"event": "user", "timestamp": time.time(), "text": text,
            "parse_data": {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []},
            "input_channel": "rest"}


def tracker(slots: dict[str, Any], events: list[dict[str, Any]], *, active_loop: str | None = None,
            sender_id: str = "test-user") -> dict[str, Any]:
    """A tracker as Rasa sends it: the latest message is the last user event's parse data."""
    users = [event for event in events if event["event"] == "user"]
    latest = {**users[-1]["parse_data"], "text": users[-1]["text"]} if users else {}
    return {
        "sender_id": sender_id,
        "slots": slots,
        "latest_message": latest,
        "events": events,
        "paused": False,
        "followup_action": None,
        "active_loop": {"name": active_loop} if active_loop else {},
        "latest_action_name": "action_listen",
    }


def action_call(action: str, tracker_: dict[str, Any], domain: dict[str, Any]) -> dict[str, Any]:
    return {"next_action": action, "sender_id": tracker_.get("sender_id"), "tracker": tracker_,
            "domain": domain, "version": RASA_VERSION}


def helpdesk_slots(**values: Any) -> dict[str, Any]:
    names = ["confirm", "previous_email", "caller_id", "email", "incident_title", "priority",
             "problem_description", "requested_slot", "handoff_to"]
    return {name: values.get(name) for name in names}


@pytest.fixture
async def helpdesk(helpdesk_action_server: str) -> AsyncIterator[ActionServer]:
    server = ActionServer(helpdesk_action_server)
    yield server
    await server.aclose()


async def test_health_and_actions(helpdesk: ActionServer) -> None:
    assert await helpdesk.health() is True
    assert set(await helpdesk.actions()) == HELPDESK_ACTIONS
    assert len(await helpdesk.actions()) == 7


async def test_check_incident_status_answers_in_local_mode(helpdesk: ActionServer,
                                                          domain: dict[str, Any]) -> None:
    events = [{"event": "action", "name": "action_listen"},
              user_event("status of my ticket", "incident_status"),
              {"event": "slot", "name": "email", "value": "ann@example.com"}]
    call = action_call("action_check_incident_status",
                       tracker(helpdesk_slots(email="ann@example.com"), events), domain)

    result = await helpdesk.run(call)

    assert isinstance(result, ActionResult)
    assert len(result.responses) == 1
    text = result.responses[0]["text"]
    assert "ServiceNow isn't connected" in text and "ann@example.com" in text
    assert [event["event"] for event in result.events] == ["reset_slots", "slot"]
    assert result.events[1]["name"] == "previous_email"
    assert result.events[1]["value"] == "ann@example.com"


async def test_form_validation_rejects_an_unknown_priority(helpdesk: ActionServer,
                                                          domain: dict[str, Any]) -> None:
    events = [{"event": "active_loop", "name": "open_incident_form"},
              {"event": "slot", "name": "requested_slot", "value": "priority"},
              user_event("bogus"), {"event": "slot", "name": "priority", "value": "bogus"}]
    slots = helpdesk_slots(email="ann@example.com", priority="bogus", requested_slot="priority")
    call = action_call("validate_open_incident_form",
                       tracker(slots, events, active_loop="open_incident_form"), domain)

    result = await helpdesk.run(call)

    assert [(e["event"], e["name"], e["value"]) for e in result.events] == [("slot", "priority", None)]
    assert len(result.responses) == 1
    response = result.responses[0]
    assert (response.get("response") or response.get("template")) == "utter_no_priority"


async def test_form_validation_accepts_a_known_priority(helpdesk: ActionServer,
                                                        domain: dict[str, Any]) -> None:
    events = [{"event": "active_loop", "name": "open_incident_form"},
              {"event": "slot", "name": "requested_slot", "value": "priority"},
              user_event("high"), {"event": "slot", "name": "priority", "value": "high"}]
    slots = helpdesk_slots(email="ann@example.com", priority="high", requested_slot="priority")
    call = action_call("validate_open_incident_form",
                       tracker(slots, events, active_loop="open_incident_form"), domain)

    result = await helpdesk.run(call)

    assert [(e["event"], e["name"], e["value"]) for e in result.events] == [("slot", "priority", "high")]
    assert result.responses == []


async def test_unknown_action_is_a_bad_response(helpdesk: ActionServer, domain: dict[str, Any]) -> None:
    call = action_call("action_no_such_thing", tracker(helpdesk_slots(), []), domain)

    with pytest.raises(ActionServerError) as caught:
        await helpdesk.run(call)

    assert caught.value.kind == "bad_response"
    assert caught.value.action == "action_no_such_thing"
    assert "no such action" in caught.value.detail and "action_no_such_thing" in caught.value.detail


async def test_action_crash_is_a_bad_response_without_the_request(helpdesk: ActionServer,
                                                                   domain: dict[str, Any]) -> None:
    # rasa-sdk answers 500 with the exception and the whole request body; the error keeps the former only.
    call = action_call("action_check_incident_status", {"slots": {"email": "secret@example.com"}}, domain)

    with pytest.raises(ActionServerError) as caught:
        await helpdesk.run(call)

    assert caught.value.kind == "bad_response"
    assert "HTTP 500" in caught.value.detail and "sender_id" in caught.value.detail
    assert "secret@example.com" not in str(caught.value)


async def test_rejection_is_action_rejected(rejecting_project: Path, domain: dict[str, Any]) -> None:
    with running_action_server(rejecting_project) as url:
        async with ActionServer(url) as server:
            assert await server.actions() == ["action_refuse"]
            with pytest.raises(ActionRejected) as caught:
                await server.run(action_call("action_refuse", tracker({}, []), domain))

    assert caught.value.action == "action_refuse"
    assert caught.value.detail == "refused on purpose"


async def test_stopped_server_is_unreachable(rejecting_project: Path, domain: dict[str, Any]) -> None:
    with running_action_server(rejecting_project) as url:
        pass
    async with ActionServer(url, timeout_s=2) as server:
        assert await server.health() is False
        with pytest.raises(ActionServerError) as caught:
            await server.run(action_call("action_refuse", tracker({}, []), domain))
        with pytest.raises(ActionServerError) as listing:
            await server.actions()

    assert caught.value.kind == "unreachable" and caught.value.action == "action_refuse"
    assert listing.value.kind == "unreachable"


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and reads requests but never answers one."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/webhook"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


async def test_silent_server_times_out_quickly(domain: dict[str, Any]) -> None:
    with silent_server() as url:
        async with ActionServer(url, timeout_s=0.5) as server:
            started = time.monotonic()
            with pytest.raises(ActionServerError) as caught:
                await server.run(action_call("action_check_incident_status", tracker({}, []), domain))
            elapsed = time.monotonic() - started
            assert await server.health() is False

    assert caught.value.kind == "timeout"
    assert elapsed < 2.0


def mock_server(handler: Any, **kwargs: Any) -> ActionServer:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ActionServer("https://actions.example.com:8443/hooks/rasa?tenant=7", client=client, **kwargs)


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, b"<html>oops</html>", "not JSON"),
    (200, b"null", "answered null"),
    (200, b'{"events": [{"name": "priority"}], "responses": []}', "no 'event' type"),
    (200, b'{"events": "slot", "responses": []}', "events"),
    (502, b"<html>Bad Gateway</html>", "HTTP 502"),
    # Sanic's own answer to a body that is not JSON: a 400 that names no action is no rejection.
    (400, b'{"description": "Bad Request", "status": 400, "message": "Failed when parsing"}', "HTTP 400"),
    (449, b'{"error": "Missing domain context", "action_name": "a"}', "wants the domain"),
])
async def test_malformed_answers_are_bad_responses(status: int, body: bytes, expected: str) -> None:
    server = mock_server(lambda request: httpx.Response(status, content=body))
    with pytest.raises(ActionServerError) as caught:
        await server.run({"next_action": "a", "tracker": {}})
    assert caught.value.kind == "bad_response"
    assert expected in caught.value.detail


async def test_token_rides_as_query_parameter_and_root_paths_drop_the_webhook_path() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.path == "/actions":
            return httpx.Response(200, json=[{"name": "a"}])
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        return httpx.Response(200, json={"events": [{"event": "slot", "name": "x", "value": 1}]})

    server = mock_server(handler, token="s3cret")
    assert await server.health() is True
    assert await server.actions() == ["a"]
    result = await server.run({"next_action": "a", "tracker": {}})

    assert result.events == [{"event": "slot", "name": "x", "value": 1}] and result.responses == []
    assert [str(url) for url in seen] == [
        "https://actions.example.com:8443/health?token=s3cret",
        "https://actions.example.com:8443/actions?token=s3cret",
        "https://actions.example.com:8443/hooks/rasa?tenant=7&token=s3cret",
    ]


async def test_from_endpoints(tmp_path: Path) -> None:
    assert ActionServer.from_endpoints({}, timeout_s=3) is None
    assert ActionServer.from_endpoints({"tracker_store": {"type": "redis"}}, timeout_s=3) is None
    project_endpoints = yaml.safe_load((HELPDESK_PROJECT / "endpoints.yml").read_text())
    server = ActionServer.from_endpoints(project_endpoints, timeout_s=3)
    assert server is not None
    assert str(server.url) == "http://localhost:5055/webhook" and server.timeout_s == 3
    await server.aclose()

    with pytest.raises(ValueError, match="url"):
        ActionServer.from_endpoints({"action_endpoint": {"token": "t"}}, timeout_s=3)
    pinned = ActionServer.from_endpoints({"action_endpoint": {
        "url": "https://actions.internal/webhook", "token": "t",
        "cafile": "/etc/ssl/certs/ca-certificates.crt"}})
    assert pinned is not None and pinned.root == httpx.URL("https://actions.internal/")
    await pinned.aclose()
    with pytest.raises(FileNotFoundError):
        ActionServer.from_endpoints({"action_endpoint": {"url": "https://a/webhook",
                                                         "cafile": str(tmp_path / "missing.pem")}})
