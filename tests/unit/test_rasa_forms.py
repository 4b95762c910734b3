"""A Rasa 3 form run through RasaAgent.handle, with the project's action server faked: activation,
asking, validation through `validate_<form>`, completion and the submit rule; and how the agent
treats what a custom action answers (failures, rejections, follow-ups, unknown events)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from bot.rasa import domain as rasa_domain
from bot.rasa.action_server import ActionRejected, ActionResult, ActionServerError
from bot.rasa.agent import RASA_VERSION, RasaAgent
from bot.rasa.tracker import Tracker
from tests.unit.test_rasa_dialogue import (
    BikeShop,
    FakeActionServer,
    load_bike_shop,
    say,
    sdk_message,
    slots_to_validate,
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> BikeShop:
    return load_bike_shop(tmp_path_factory.mktemp("bike-shop"))


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("text") for m in messages]


def turn_events(tracker: Tracker) -> list[tuple[str, Any, Any]]:
    return [(e["event"], e.get("name"), e.get("value")) for e in tracker.events_after_latest_user()]


async def test_activation_fills_from_trigger_intent_and_validates_prefilled_slots(shop: BikeShop) -> None:
    server = FakeActionServer()
    agent = RasaAgent(shop.domain, shop.ensemble, server)
    tracker = Tracker("rider-1", shop.domain)
    result = await agent.handle(tracker, say("rent me a mountain bike", "book_bike", bike_type="mountain"))
    assert result.actions == ["booking_form"]
    assert result.messages == [{"text": "Which station do you start from?", "response": "utter_ask_station"}]
    assert tracker.active_loop == "booking_form"
    assert {k: tracker.slots[k] for k in ("via_form", "bike_type", "requested_slot")} == {
        "via_form": True, "bike_type": "mountain", "requested_slot": "station",
    }
    events = turn_events(tracker)
    assert events[:4] == [
        ("slot", "bike_type", "mountain"),  # action_extract_slots, before the form runs
        ("action", "booking_form", None),
        ("active_loop", "booking_form", None),
        ("slot", "via_form", True),  # from_trigger_intent: filled once the loop is active
    ]
    assert events[-4:] == [("slot", "bike_type", "mountain"), ("slot", "requested_slot", "station"),
                           ("bot", None, None), ("action", "action_listen", None)]
    assert server.called == ["validate_booking_form"]
    [request] = server.requests
    assert request["next_action"] == "validate_booking_form"
    assert request["sender_id"] == "rider-1" and request["tracker"]["sender_id"] == "rider-1"
    assert request["version"] == RASA_VERSION and request["domain"] == shop.domain.raw
    assert request["tracker"]["active_loop"]["name"] == "booking_form"
    assert slots_to_validate(request)["bike_type"] == "mountain"
    assert request["tracker"]["latest_message"]["intent"]["name"] == "book_bike"
    json.dumps(request)


async def test_a_whole_booking(shop: BikeShop) -> None:
    server = FakeActionServer()
    agent = RasaAgent(shop.domain, shop.ensemble, server)
    tracker = Tracker("rider-2", shop.domain)
    await agent.handle(tracker, say("rent me a mountain bike", "book_bike", bike_type="mountain"))

    # the station: validated as the only slot the message filled, then `action_ask_days` on the server
    result = await agent.handle(tracker, say("from Harbour", "inform", station="Harbour"))
    assert result.actions == ["booking_form"]
    assert server.called[1:] == ["validate_booking_form", "action_ask_days"]
    assert slots_to_validate(server.requests[1]) == {"station": "Harbour"}
    ask = server.requests[2]
    assert ask["tracker"]["slots"]["requested_slot"] == "days"
    assert ask["tracker"]["events"][-1] == {**ask["tracker"]["events"][-1], "event": "slot",
                                            "name": "requested_slot", "value": "days"}
    assert ask["tracker"]["active_loop"]["name"] == "booking_form"
    assert texts(result.messages) == ["How many days will you ride?"]

    # a bad value: the validation resets it and utters a named response with a value of its own
    result = await agent.handle(tracker, say("three-ish", "inform"))
    assert slots_to_validate(server.requests[3]) == {"days": "three-ish"}
    assert result.messages[0] == {"text": "I cannot book 'three-ish' days: give a number up to 14.",
                                  "response": "utter_invalid_days"}
    assert texts(result.messages)[1:] == ["How many days will you ride?"]
    assert tracker.slots["days"] is None and tracker.slots["requested_slot"] == "days"

    result = await agent.handle(tracker, say("4 days", "inform", days="4"))
    assert tracker.slots["days"] == "4" and tracker.slots["requested_slot"] == "confirm"
    [question] = result.messages
    assert question["text"].startswith("A mountain bike from Harbour for 4")
    assert "{voucher}" in question["text"]
    assert [b["title"] for b in question["buttons"]] == ["Yes", "No"]

    # complete: the form deactivates and the submit rule runs the booking action
    result = await agent.handle(tracker, say("yes", "affirm"))
    assert result.actions == ["booking_form", "action_book_bike"]
    assert texts(result.messages) == ["Done! Your mountain bike waits at Harbour."]
    assert tracker.active_loop is None and tracker.slots["requested_slot"] is None
    assert tracker.slots["confirm"] is True
    assert ("active_loop", None, None) in turn_events(tracker)
    booked = server.requests[-1]
    assert booked["next_action"] == "action_book_bike"
    assert booked["tracker"]["active_loop"] == {} and booked["tracker"]["slots"]["confirm"] is True
    assert booked["tracker"]["latest_action_name"] == "booking_form"
    assert tracker.latest_action == "action_listen"


async def test_validation_sees_the_form_action_then_only_the_candidates(shop: BikeShop) -> None:
    server = FakeActionServer()
    agent = RasaAgent(shop.domain, shop.ensemble, server)
    tracker = Tracker("rider-2b", shop.domain)
    await agent.handle(tracker, say("rent me a mountain bike", "book_bike", bike_type="mountain"))
    await agent.handle(tracker, say("from Harbour", "inform", station="Harbour"))
    for request in server.requests[:2]:
        events = request["tracker"]["events"]
        candidates = len(slots_to_validate(request))
        assert events[-candidates - 1]["event"] == "action"
        assert events[-candidates - 1]["name"] == "booking_form"
    assert slots_to_validate(server.requests[0]) == {"bike_type": "mountain"}
    assert [e["name"] for e in server.requests[1]["tracker"]["events"][-2:]] == ["booking_form", "station"]


async def test_validation_of_a_prefilled_value(shop: BikeShop) -> None:
    server = FakeActionServer()
    agent = RasaAgent(shop.domain, shop.ensemble, server)
    tracker = Tracker("rider-3", shop.domain)
    result = await agent.handle(tracker, say("a bike for lots of days", "book_bike", days="lots"))
    assert texts(result.messages) == ["I cannot book 'lots' days: give a number up to 14.",
                                      "Which station do you start from?"]
    assert tracker.slots["days"] is None and tracker.slots["requested_slot"] == "station"


async def test_validation_may_end_the_form(shop: BikeShop) -> None:
    def closed(request: dict[str, Any]) -> ActionResult:
        return ActionResult(events=[{"event": "slot", "name": "station", "value": None},
                                    {"event": "active_loop", "name": None}],
                            responses=[sdk_message(text="That station is closed.")])

    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("rider-4", shop.domain)
    await agent.handle(tracker, say("rent a bike", "book_bike"))
    agent.actions = FakeActionServer(validate_booking_form=closed)
    result = await agent.handle(tracker, say("the Depot", "inform", station="Depot"))
    assert texts(result.messages)[0] == "That station is closed."
    assert "Which station do you start from?" not in texts(result.messages)
    assert tracker.active_loop is None


async def test_an_unrelated_message_rejects_the_form(shop: BikeShop) -> None:
    server = FakeActionServer()
    agent = RasaAgent(shop.domain, shop.ensemble, server)
    tracker = Tracker("rider-5", shop.domain)
    await agent.handle(tracker, say("rent a bike", "book_bike"))
    result = await agent.handle(tracker, say("are you a bot?", "bot_challenge"))
    # rejected, a general rule answers, and the form asks its question again (Rasa's RulePolicy)
    assert result.actions == ["utter_iamabot", "booking_form"]
    assert turn_events(tracker)[0] == ("action_execution_rejected", "booking_form", None)
    assert not tracker.loop_rejected and tracker.active_loop == "booking_form"
    assert texts(result.messages)[-1] == "Which station do you start from?"
    assert server.called == []  # nothing to validate: no validation call


async def test_action_server_failure_is_a_polite_message(shop: BikeShop, caplog) -> None:
    def down(request: dict[str, Any]) -> ActionResult:
        raise ActionServerError("unreachable", request["next_action"], "connection refused")

    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer(action_check_availability=down))
    tracker = Tracker("rider-6", shop.domain)
    with caplog.at_level(logging.WARNING, logger="bot.rasa.agent"):
        result = await agent.handle(tracker, say("any bikes free?", "check_availability"))
    assert result.failed and not result.fell_back
    assert result.actions == ["action_check_availability"]
    assert result.messages == [{"text": "Sorry, something went wrong on our side.",
                                "response": "utter_action_failed"}]
    assert "connection refused" in caplog.text
    own = RasaAgent(shop.domain, shop.ensemble, FakeActionServer(action_check_availability=down),
                    failure_message={"text": "Our booking system is down; a person will call you."})
    result = await own.handle(Tracker("rider-6b", shop.domain), say("free bikes?", "check_availability"))
    assert texts(result.messages) == ["Our booking system is down; a person will call you."]
    no_server = RasaAgent(shop.domain, shop.ensemble)
    result = await no_server.handle(Tracker("rider-6c", shop.domain),
                                    say("free bikes?", "check_availability"))
    assert result.failed


def _raise_rejected(request: dict[str, Any]) -> ActionResult:
    raise ActionRejected(request["next_action"], "not now")


def _answer_rejected(request: dict[str, Any]) -> ActionResult:
    return ActionResult(events=[{"event": "action_execution_rejected", "name": request["next_action"]}])


@pytest.mark.parametrize("handler", [_raise_rejected, _answer_rejected])
async def test_rejected_action_leaves_the_turn_to_the_next_policy(shop: BikeShop, handler) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer(action_check_availability=handler))
    tracker = Tracker("rider-7", shop.domain)
    called = []

    async def fallback() -> list[dict[str, Any]]:
        called.append(True)
        return [{"text": "Let me check with the team."}]

    result = await agent.handle(tracker, say("free bikes?", "check_availability"), fallback)
    assert called and result.fell_back and not result.failed
    assert "action_check_availability" not in result.actions
    assert any(e["event"] == "action_execution_rejected" and e["name"] == "action_check_availability"
               for e in tracker.events)
    assert not any(e["event"] == "action" and e["name"] == "action_check_availability"
                   for e in tracker.events)
    assert texts(result.messages) == ["Let me check with the team."]


async def test_followup_action_from_the_server_runs_next(shop: BikeShop) -> None:
    def then_help(request: dict[str, Any]) -> ActionResult:
        return ActionResult(events=[{"event": "followup", "name": "utter_help"}],
                            responses=[sdk_message(text="No bikes left right now.")])

    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer(action_check_availability=then_help))
    tracker = Tracker("rider-8", shop.domain)
    result = await agent.handle(tracker, say("free bikes?", "check_availability"))
    assert result.actions == ["action_check_availability", "utter_help"]
    assert texts(result.messages) == ["No bikes left right now.",
                                      "Tell me a station, a bike type and how many days."]
    help_event = next(e for e in tracker.events if e["event"] == "action" and e["name"] == "utter_help")
    assert help_event["policy"] == "FollowupAction" and tracker.followup is None


async def test_unknown_event_from_the_server_is_skipped_with_a_warning(shop: BikeShop, caplog) -> None:
    def odd(request: dict[str, Any]) -> ActionResult:
        return ActionResult(events=[{"event": "teleport", "to": "moon"},
                                    {"event": "slot", "name": "member", "value": True}])

    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer(action_check_availability=odd))
    tracker = Tracker("rider-9", shop.domain)
    with caplog.at_level(logging.WARNING, logger="bot.rasa.agent"):
        result = await agent.handle(tracker, say("free bikes?", "check_availability"))
    assert "teleport" in caplog.text
    assert not any(e["event"] == "teleport" for e in tracker.events)
    assert tracker.slots["member"] is True and not result.failed


async def test_server_messages_as_rasa_renders_them(shop: BikeShop) -> None:
    def say_much(request: dict[str, Any]) -> ActionResult:
        return ActionResult(responses=[
            sdk_message(text="3 bikes are free.", buttons=[{"title": "Yes", "payload": "/book_bike"}]),
            sdk_message("utter_booked", bike_type="cargo", station="Pier"),
            sdk_message("utter_no_such_response"),
            {"json_message": {"map": "stations"}},
        ])

    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer(action_check_availability=say_much))
    result = await agent.handle(Tracker("rider-10", shop.domain), say("free bikes?", "check_availability"))
    assert result.messages == [
        {"text": "3 bikes are free.", "buttons": [{"title": "Yes", "payload": "/book_bike"}]},
        {"text": "Done! Your cargo bike waits at Pier.", "response": "utter_booked"},
        {"custom": {"map": "stations"}},
    ]


def _first_variation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Response variations drawn deterministically: the first one that qualifies."""
    monkeypatch.setattr(rasa_domain, "random", SimpleNamespace(choice=lambda pool: pool[0]))


async def test_form_asks_with_the_generic_variation_on_other_channels(shop: BikeShop, monkeypatch) -> None:
    _first_variation(monkeypatch)
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    result = await agent.handle(Tracker("web-1", shop.domain), say("rent a bike", "book_bike", channel="web"))
    assert texts(result.messages) == ["Which station do you start from?"]


async def test_form_asks_with_the_channels_own_variation(shop: BikeShop, monkeypatch) -> None:
    _first_variation(monkeypatch)
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("tg-1", shop.domain)
    result = await agent.handle(tracker, say("rent a bike", "book_bike", channel="telegram"))
    assert texts(result.messages) == ["Pick a station from the list below."]
